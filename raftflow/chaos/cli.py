"""`raftflow chaos run`: start a cluster, inject the seed's faults under load, check, report.

Exit status: 0 when no invariant was violated, 1 when one was, 2 for bad arguments, 130 when
interrupted (the cluster is torn down in every case). With `--json` the last stdout line is
`{"seed", "duration_s", "faults_injected", "workflows_started", "workflows_completed",
"violations"}`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from raftflow.chaos.faults import FAULT_KINDS, FaultPlanError, parse_kinds

if TYPE_CHECKING:
    from raftflow.chaos.runner import ChaosOptions

NODES_MIN, NODES_MAX = 3, 7
DURATION_S_MAX = 24 * 3600


def add_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("--nodes", type=int, default=3, help=f"cluster size ({NODES_MIN}-{NODES_MAX})")
    run.add_argument("--duration", type=float, default=60.0, metavar="SECONDS",
                     help="length of the fault phase (default 60)")
    run.add_argument("--faults", default="all", metavar="LIST",
                     help=f"comma-separated fault kinds, or 'all': {', '.join(FAULT_KINDS)}")
    run.add_argument("--seed", type=int, default=1, help="names the fault schedule and plans")
    run.add_argument("--report", default="chaos-report", metavar="DIR",
                     help="directory for report.html and report.json")
    run.add_argument("--shards", type=int, default=8, help="shard count (default 8)")
    run.add_argument("--concurrency", type=int, default=8,
                     help="client sessions driving workflows at once (default 8)")
    run.add_argument("--settle", type=float, default=120.0, metavar="SECONDS",
                     help="longest wait for started workflows after the faults (default 120)")
    run.add_argument("--keep-data", action="store_true",
                     help="keep node data and logs (always kept when a violation is found)")
    run.add_argument("--json", action="store_true", help="print the summary as the last line")
    run.add_argument("--secure", action="store_true",
                     help="nodes with HTTPS, mutual TLS on the peer links and auth (a "
                          "throw-away CA and admin key); the workload and checks use them")


def options_from_args(args: argparse.Namespace) -> ChaosOptions:
    """Validated options; raises ValueError naming the bad flag."""
    from raftflow.chaos.runner import ChaosOptions
    if not NODES_MIN <= args.nodes <= NODES_MAX:
        raise ValueError(f"--nodes must be {NODES_MIN} to {NODES_MAX}, got {args.nodes}")
    if not 0 < args.duration <= DURATION_S_MAX:
        raise ValueError(f"--duration must be > 0 and <= {DURATION_S_MAX}, got {args.duration}")
    if args.shards < 1 or args.concurrency < 1 or args.settle <= 0:
        raise ValueError("--shards and --concurrency must be >= 1, --settle > 0")
    return ChaosOptions(nodes=args.nodes, duration_s=args.duration,
                        fault_kinds=parse_kinds(args.faults), seed=args.seed,
                        report_dir=Path(args.report), shards=args.shards,
                        concurrency=args.concurrency, settle_s=args.settle,
                        keep_data=args.keep_data, secure=args.secure)


def run_cli(args: argparse.Namespace) -> int:
    # Imported here: `raftflow --help` and the client commands should not load the harness.
    import asyncio

    import uvloop

    from raftflow.bench.local_cluster import sigterm_raises_interrupt
    from raftflow.chaos.report import write_report
    from raftflow.chaos.runner import run_chaos

    try:
        options = options_from_args(args)
    except (ValueError, FaultPlanError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s chaos %(levelname)s %(name)s: %(message)s")
    with sigterm_raises_interrupt():
        try:
            # A secured run's client makes TLS connects: asyncio's loop (serve.run_loop says why).
            outcome = (asyncio.run if options.secure else uvloop.run)(run_chaos(options))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            return 130
    html_path, _ = write_report(outcome, options.report_dir)
    print(f"chaos: seed {outcome.seed}, {len(outcome.faults)} faults, "
          f"{outcome.workflows_completed}/{outcome.workflows_started} workflows completed, "
          f"{len(outcome.violations)} violations; recovery p50 {outcome.recovery_p50_s} s, "
          f"p99 {outcome.recovery_p99_s} s; report {html_path}", file=sys.stderr, flush=True)
    for violation in outcome.violations[:20]:
        print(f"  VIOLATION {violation.invariant} {violation.subject}: {violation.detail}",
              file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(outcome.summary_json()), flush=True)
    return 1 if outcome.violations else 0
