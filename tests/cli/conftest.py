"""The fake node of the CLI tests (tests/cli/fake_node.py) as a fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.fake_node import Fake, serving


@pytest.fixture
def fake() -> Iterator[Fake]:
    with serving() as node:
        yield node
