"""python -m bench (make bench): run the benchmarks and write their sections of
docs/performance.md.

    python -m bench                  # every measurement, about a minute; writes the doc
    python -m bench --quick          # shorter runs, to try the benchmark itself; no doc
    python -m bench --profile        # sipd under cProfile through the same loads: hot spots
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from . import profile, rpc_bench
from .wsclient import CLIENTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = rpc_bench.Options()
    parser.add_argument("--rounds", type=int, default=defaults.rounds,
                        help="alternations of sipd and the echo server (default %(default)s)")
    parser.add_argument("--duration", type=float, default=defaults.duration,
                        help="seconds per round trip run (default %(default)s)")
    parser.add_argument("--connections", type=int, default=defaults.connections,
                        help="concurrent connections of the second run (default %(default)s)")
    parser.add_argument("--clients", type=int, default=defaults.clients,
                        help="subscribed clients of the fan-out run (default %(default)s)")
    parser.add_argument("--events", type=int, default=defaults.events,
                        help="measured fan-out events, over all rounds (default %(default)s)")
    parser.add_argument("--client", choices=CLIENTS, default=defaults.client,
                        help="the benchmark's WebSocket client (default %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="1 round, 1 s runs, 50 events; does not write the doc")
    parser.add_argument("--no-write", action="store_true",
                        help="print the results only, do not update docs/performance.md")
    parser.add_argument("--profile", nargs="?", const="all", choices=("all", *rpc_bench.LOADS),
                        help="run sipd alone under cProfile through the loads (all, rpc or "
                             "fanout) and print its hot spots")
    parser.add_argument("--profile-out", type=Path, help="keep the cProfile output here")
    args = parser.parse_args(argv)

    options = dataclasses.replace(defaults, rounds=args.rounds, duration=args.duration,
                                  connections=args.connections, clients=args.clients,
                                  events=args.events, client=args.client)
    bounds = [(options.rounds, 1, 10), (options.duration, 0.2, 30), (options.connections, 1, 200),
              (options.clients, 1, 500), (options.events, 1, 5000)]
    if any(not low <= value <= high for value, low, high in bounds):
        parser.error("rounds 1-10, duration 0.2-30 s, connections 1-200, clients 1-500, "
                     "events 1-5000")
    if args.quick:
        options = dataclasses.replace(options, rounds=1, duration=1.0, events=50)
    if args.profile or args.profile_out:
        which = args.profile or "all"
        profile.run(options, args.profile_out, rpc_bench.LOADS if which == "all" else (which,))
        return 0
    rpc_bench.run(options, write=not (args.quick or args.no_write))
    return 0


if __name__ == "__main__":
    sys.exit(main())
