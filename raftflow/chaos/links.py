"""Per-directed-link TCP fault proxy for real-process chaos runs, and its control client.

This module is the proxy process's entry point, `python -m raftflow.chaos.links`, which
`LinkProxyProcess` starts. The proxy itself is spread by what each part holds:

  link_limits       every bound of the proxy, with why
  link_faults       pure values: link specs, faults, how long a chunk is held
  link_control      the control protocol (requests, their parser) and the blocking client
  link_connections  the byte shaping: links, proxied connections, their two directions
  link_proxy        the server: listeners, control port, `serve` until told to stop
  link_process      the proxy as a child process of the harness
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvloop

from raftflow.chaos.link_faults import LinkSpec, check_link_specs, parse_link_spec
from raftflow.chaos.link_proxy import serve


def _link_arg(text: str) -> LinkSpec:
    try:
        return parse_link_spec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m raftflow.chaos.links",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--link", type=_link_arg, action="append", required=True,
                        metavar="NAME=LISTEN_PORT:TARGET_PORT")
    args = parser.parse_args(argv)
    try:
        check_link_specs(args.link)
    except ValueError as error:
        parser.error(str(error))
    uvloop.run(serve(args.link, args.control_port, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
