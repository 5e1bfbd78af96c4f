"""`python -m bench --profile`: run sipd under cProfile through the RPC loads, name the hot spots.

The daemon runs under bench/profiled_sipd.py, which profiles from SIGUSR1 (sent when the loads
start) to SIGUSR2 (when they end), so start-up and shutdown are left out. Shares are of the
daemon's busy time: the time trio spent waiting in epoll for something to do is left out.
"""

from __future__ import annotations

import dataclasses
import pstats
import tempfile
from collections import defaultdict
from pathlib import Path

import trio

from .procs import BenchSipd
from .rpc_bench import LOADS, Options, run_loads

IDLE = {"<method 'poll' of 'select.epoll' objects>", "<method 'select' of 'select.epoll' objects>"}
PACKAGES = ("sipd", "jsonrpcserver", "trio_websocket", "wsproto", "h11", "trio", "json", "oslash",
            "logging", "asyncio", "inspect", "typing", "dataclasses", "functools", "enum")


def _where(filename: str) -> str:
    """A short name for a file: 'sipd/rpc/dispatch.py', 'trio/_core/_run.py', 'builtins'."""
    if filename == "~":
        return "builtins"
    parts = Path(filename).parts
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] in ("site-packages", "lib", "main") and index + 1 < len(parts):
            tail = parts[index + 1:]
            if tail[0] in PACKAGES or tail[0].endswith(".py"):
                return "/".join(tail)
    return "/".join(parts[-2:])


def _package(where: str) -> str:
    if where == "builtins":
        return "builtins (C: json, socket, select, ...)"
    head = where.split("/", 1)[0]
    if head == "sipd":
        return "/".join(where.split("/")[:2]) if "/" in where[5:] else where
    return head.removesuffix(".py")


def hot_spots(path: Path, top: int = 25) -> str:
    stats = pstats.Stats(str(path))
    table = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in table.values())
    idle = sum(value[2] for key, value in table.items() if key[2] in IDLE)
    busy = total - idle
    lines = [f"profile: {path}",
             f"daemon time seen by cProfile {total:.2f} s, of it waiting in epoll {idle:.2f} s, "
             f"busy {busy:.2f} s (shares below are of busy time)", ""]

    by_package: dict[str, float] = defaultdict(float)
    for (filename, _line, name), (_cc, _nc, tt, _ct, _callers) in table.items():
        if name not in IDLE:
            by_package[_package(_where(filename))] += tt
    lines.append("own time by package / module:")
    for package, seconds in sorted(by_package.items(), key=lambda item: -item[1])[:15]:
        lines.append(f"  {seconds / busy:6.1%}  {package}")

    lines += ["", f"top {top} functions by own time:"]
    ranked = sorted(((value[2], value[1], key) for key, value in table.items()
                     if key[2] not in IDLE), reverse=True)
    for tt, calls, (filename, line, name) in ranked[:top]:
        lines.append(f"  {tt / busy:6.1%}  {calls:9d} calls  {_where(filename)}:{line} {name}")

    lines += ["", "sipd functions by cumulative time (includes what they call; coroutines are "
              "counted per resumption):"]
    ours = sorted(((value[3], value[1], key) for key, value in table.items()
                   if _where(key[0]).startswith("sipd/")), reverse=True)
    for ct, calls, (filename, line, name) in ours[:top]:
        lines.append(f"  {ct / busy:6.1%}  {calls:9d} calls  {_where(filename)}:{line} {name}")
    return "\n".join(lines)


def run(options: Options, out: Path | None, loads: tuple[str, ...] = LOADS) -> str:
    # One round; fewer fan-out events, since the profiler slows settings.set several times over
    # and the fan-out connections should stay open about as long as in a normal run.
    options = dataclasses.replace(options, rounds=1, events=min(options.events, 60))
    with tempfile.TemporaryDirectory(prefix="sipd-bench-profile-") as tmp:
        profile_out = (out or Path(tmp) / "sipd.prof").resolve()
        profile_out.unlink(missing_ok=True)
        sipd = BenchSipd(Path(tmp), profile_out=profile_out)
        try:
            print(f"starting sipd with a cProfile switch; loads: {', '.join(loads)} ...",
                  flush=True)
            sipd.start()
            trio.run(_profiled_loads, sipd, options, loads)
        except BaseException:
            print(f"sipd log:\n{sipd.log()[-3000:]}")
            raise
        finally:
            sipd.stop()
        if not profile_out.exists():
            raise RuntimeError(f"sipd wrote no profile; log:\n{sipd.log()}")
        report = hot_spots(profile_out)
        print()
        print(report)
        if out is None:
            print("\n(the profile file is removed; keep it with --profile-out FILE, then "
                  "`python -m pstats FILE`)")
        return report


async def _profiled_loads(sipd: BenchSipd, options: Options, loads: tuple[str, ...]) -> None:
    target = sipd.target()
    sipd.profiling(True)
    await run_loads(target, None, options, loads)
    sipd.profiling(False)
    assert sipd.profile_out is not None
    with trio.move_on_after(10):
        while not sipd.profile_out.exists():
            await trio.sleep(0.05)
        await trio.sleep(0.2)  # dump_stats writes the file in one go, but let it finish
