"""`python -m raftflow` is the `raftflow` command."""

import sys

from raftflow.cli import main

sys.exit(main())
