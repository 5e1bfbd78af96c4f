"""python -m bench (make bench): run the benchmarks and write their sections of
docs/performance.md.

    python -m bench                  # every measurement, about two minutes; writes the doc
    python -m bench --only sip       # one benchmark: rpc (RPC and events), sip, call, msrp,
                                     # chat, files, xcap, presence, accounts or web-audio
    python -m bench --only soak --minutes 60  # the soak (never part of a full run)
    python -m bench --quick          # shorter runs, to try the benchmark itself; no doc
    python -m bench --profile        # sipd under cProfile through the RPC loads: hot spots
    python -m bench --profile sip-parse      # the SIP parser under cProfile
    python -m bench --profile sip-register   # sipd under cProfile while it registers
    python -m bench --profile sip-add        # ... while accounts are added (and register)
    python -m bench --profile presence       # sipd under cProfile while it subscribes
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from . import (
    accounts_bench,
    call_bench,
    chat_daemons,
    files_bench,
    msrp_bench,
    presence_bench,
    profile,
    rpc_bench,
    sip_bench,
    soak_bench,
    web_audio_bench,
    xcap_bench,
)
from .wsclient import CLIENTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = rpc_bench.Options()
    parser.add_argument("--rounds", type=int, default=defaults.rounds,
                        help="alternations of sipd and its baseline: the echo server, sipp "
                             "(default %(default)s)")
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
    sip_defaults = sip_bench.Options()
    parser.add_argument("--accounts", type=int, default=sip_defaults.accounts,
                        help="SIP: accounts registered at once (default %(default)s)")
    parser.add_argument("--burst", type=int, default=sip_defaults.burst,
                        help="SIP: accounts added at once to a fresh daemon "
                             "(default %(default)s)")
    presence_defaults = presence_bench.Options()
    parser.add_argument("--subscriptions", type=int, default=presence_defaults.subscriptions,
                        help="presence: subscriptions held by one daemon at Kamailio "
                             "(default %(default)s)")
    parser.add_argument("--only",
                        choices=("rpc", "sip", "call", "msrp", "chat", "files", "xcap",
                                 "presence", "accounts", "web-audio", "soak"),
                        help="run one benchmark: rpc (RPC and events), sip (parsing, "
                             "registration with Kamailio), call (call setup, CPU and memory "
                             "per call), msrp (chat rate, bulk transfer over TCP and TLS), "
                             "chat (chat.send between two daemons), "
                             "files (a 200 MB file over MSRP TCP and TLS), xcap "
                             "(contacts.add against bare PUTs, warm and cold start-up), "
                             "presence (NOTIFYs with PIDF, subscriptions held at Kamailio), "
                             "accounts (accounts.add at 10 to 10,000 accounts) or "
                             "web-audio (a web page's call: mouth-to-ear and CPU against "
                             "baresip), soak (--minutes of mixed load: memory and "
                             "descriptors each minute; only when named); "
                             "default all but soak")
    parser.add_argument("--minutes", type=float, default=soak_bench.Options().minutes,
                        help="soak: minutes of load (default %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="1 round, 1 s runs, 50 events, 50/20 SIP accounts; does not "
                             "write the doc")
    parser.add_argument("--no-write", action="store_true",
                        help="print the results only, do not update docs/performance.md")
    parser.add_argument("--profile", nargs="?", const="all",
                        choices=("all", *rpc_bench.LOADS, "sip-parse", "sip-register", "sip-add",
                                 "presence"),
                        help="run sipd alone under cProfile through the RPC loads (all, rpc "
                             "or fanout), the SIP parser (sip-parse) or sipd registering "
                             "--accounts accounts through accounts.register (sip-register) or "
                             "accounts.add (sip-add), or sipd subscribing to --subscriptions "
                             "contacts at Kamailio (presence), and print the hot spots")
    parser.add_argument("--profile-out", type=Path, help="keep the cProfile output here")
    args = parser.parse_args(argv)

    options = dataclasses.replace(defaults, rounds=args.rounds, duration=args.duration,
                                  connections=args.connections, clients=args.clients,
                                  events=args.events, client=args.client)
    bounds = [(options.rounds, 1, 10), (options.duration, 0.2, 30), (options.connections, 1, 200),
              (options.clients, 1, 500), (options.events, 1, 5000)]
    bounds += [(args.accounts, 1, 500), (args.burst, 1, 500), (args.subscriptions, 1, 5000)]
    if any(not low <= value <= high for value, low, high in bounds):
        parser.error("rounds 1-10, duration 0.2-30 s, connections 1-200, clients 1-500, "
                     "events 1-5000, accounts 1-500, burst 1-500, subscriptions 1-5000")
    presence_options = dataclasses.replace(presence_defaults, subscriptions=args.subscriptions)
    sip_options = dataclasses.replace(sip_defaults, accounts=args.accounts, burst=args.burst,
                                      rounds=args.rounds)
    if args.quick:
        options = dataclasses.replace(options, rounds=1, duration=1.0, events=50)
        sip_options = dataclasses.replace(sip_bench.QUICK, accounts=min(args.accounts, 50),
                                          burst=min(args.burst, 20))
    if args.quick:
        presence_options = dataclasses.replace(
            presence_bench.QUICK, subscriptions=min(args.subscriptions,
                                                    presence_bench.QUICK.subscriptions))
    if args.profile == "presence":
        presence_bench.profile_subscriptions(presence_options, out=args.profile_out)
        return 0
    if args.profile == "sip-parse":
        sip_bench.profile_parse()
        return 0
    if args.profile in ("sip-register", "sip-add"):
        sip_bench.profile_register(sip_options, mode=args.profile.removeprefix("sip-"),
                                   out=args.profile_out)
        return 0
    if args.profile or args.profile_out:
        which = args.profile or "all"
        profile.run(options, args.profile_out, rpc_bench.LOADS if which == "all" else (which,))
        return 0
    write = not (args.quick or args.no_write)
    if args.only in (None, "rpc"):
        rpc_bench.run(options, write=write)
    if args.only in (None, "sip"):
        sip_bench.run(sip_options, write=write)
    if args.only in (None, "call"):
        call_bench.run(call_bench.QUICK if args.quick else call_bench.Options(), write=write)
    if args.only in (None, "msrp"):
        msrp_options = dataclasses.replace(msrp_bench.Options(), rounds=args.rounds)
        msrp_bench.run(msrp_bench.QUICK if args.quick else msrp_options, write=write)
    if args.only in (None, "chat"):
        chat_options = dataclasses.replace(chat_daemons.Options(), rounds=args.rounds)
        chat_daemons.run(chat_daemons.QUICK if args.quick else chat_options, write=write)
    if args.only in (None, "files"):
        files_bench.run(files_bench.QUICK if args.quick else files_bench.Options(), write=write)
    if args.only in (None, "xcap"):
        xcap_options = dataclasses.replace(xcap_bench.Options(), rounds=args.rounds)
        xcap_bench.run(xcap_bench.QUICK if args.quick else xcap_options, write=write)
    if args.only in (None, "presence"):
        presence_bench.run(presence_options, write=write)
    if args.only in (None, "accounts"):
        accounts_bench.run(accounts_bench.QUICK if args.quick else accounts_bench.Options(),
                           write=write)
    if args.only in (None, "web-audio"):
        web_audio_bench.run(web_audio_bench.QUICK if args.quick else web_audio_bench.Options(),
                            write=write)
    if args.only == "soak":
        if not 0.5 <= args.minutes <= 24 * 60:
            parser.error("minutes 0.5-1440")
        soak_options = (soak_bench.QUICK if args.quick
                        else dataclasses.replace(soak_bench.Options(), minutes=args.minutes))
        soak_bench.run(soak_options, write=write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
