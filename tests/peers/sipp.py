"""sipp (sip-tester): scripted SIP traffic from a scenario XML, as UAC or UAS, on 127.0.0.1.

    sipp = Sipp(tmp_path)
    result = sipp.run(SCENARIOS / "options_uac.xml", target=("127.0.0.1", kam.udp_port),
                      rows=[["alice", "example.test"]])
    assert result.ok, result.report()

    uas = sipp.start(my_uas_scenario, calls=1)      # a UAS in the background
    ... send it something on uas.local_port ...
    result = uas.wait(timeout=10)

Credentials go in the CSV (`rows`) as a field "[authentication username=U password=P]" that
the scenario puts where the Authorization header goes (see scenarios/register_uac.xml); keep
`Call-ID: [call_id]` exactly so sipp can match answers to calls. Debian's sipp has no TLS.
Every run is bounded: -m (calls), -timeout with -timeout_error, and a process lifetime.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .ports import HOST, free_port
from .proc import Process, require_binary, wait_until

SCENARIOS = Path(__file__).with_name("scenarios")

#: sipp's exit codes
EXIT_CODES = {
    0: "all calls succeeded",
    1: "at least one call failed",
    97: "exit on internal command (calls may have been processed)",
    99: "normal exit without calls processed",
    255: "fatal error",
    254: "fatal error binding a socket",
}

TRANSPORTS = {"udp": "u1", "tcp": "t1"}


@dataclass
class SippResult:
    returncode: int
    log: str  # sipp's stdout and stderr
    stats: str  # -trace_stat CSV
    errors: str  # -trace_err: unexpected messages
    messages: str  # -trace_msg: every message sent and received
    screen: str  # -trace_screen: the final statistics screen

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def report(self) -> str:
        meaning = EXIT_CODES.get(self.returncode, "unknown")
        return (f"sipp exit status {self.returncode} ({meaning})\n"
                f"--- errors ---\n{self.errors[-3000:]}\n"
                f"--- screen ---\n{self.screen[-3000:]}\n"
                f"--- output ---\n{self.log[-2000:]}\n"
                f"--- messages ---\n{self.messages[-4000:]}")


class SippRun:
    """One sipp process; `wait()` gives its SippResult."""

    def __init__(self, process: Process, files: dict[str, Path], local_port: int,
                 timeout: float) -> None:
        self.process = process
        self.files = files
        self.local_port = local_port
        self.timeout = timeout

    def wait(self, timeout: float | None = None) -> SippResult:
        limit = (timeout if timeout is not None else self.timeout) + 5
        assert self.process.popen is not None
        try:
            self.process.popen.wait(limit)
        except Exception:  # noqa: BLE001 - stop() below kills it
            pass
        code = self.process.stop(timeout=2)

        def read(key: str) -> str:
            path = self.files[key]
            return path.read_text(errors="replace") if path.exists() else ""

        return SippResult(returncode=-1 if code is None else code, log=self.process.log_text(),
                          stats=read("stats"), errors=read("errors"),
                          messages=read("messages"), screen=read("screen"))

    def stop(self) -> None:
        self.process.stop(timeout=2)


class Sipp:
    def __init__(self, tmpdir: Path) -> None:
        self.binary = require_binary("sipp")
        self.tmpdir = Path(tmpdir)

    def start(
        self,
        scenario: Path | str,
        target: tuple[str, int] | None = None,
        *,
        rows: Sequence[Sequence[str]] | None = None,
        transport: str = "udp",
        calls: int = 1,
        timeout: float = 15,
        local_port: int | None = None,
        keys: dict[str, str] | None = None,
        inputs: dict[str, Path] | None = None,
        extra_args: Sequence[str] = (),
    ) -> SippRun:
        """Start sipp with `scenario` (a path, or a name under scenarios/) in the background.

        `target` is the (host, port) a UAC sends to; a UAS has none. `rows` become the -inf CSV
        (fields [field0], [field1], ...), used in order. `keys` become -key name value.
        `inputs` (name -> path) are copied into sipp's working directory, where a scenario
        finds them by name (the audio of <exec rtp_stream="tone.wav,-1,0"/>).
        """
        scenario_path = Path(scenario)
        if not scenario_path.is_absolute() and not scenario_path.exists():
            scenario_path = SCENARIOS / scenario_path
        if not scenario_path.exists():
            raise FileNotFoundError(scenario_path)
        if transport not in TRANSPORTS:
            raise ValueError(f"sipp transport must be one of {sorted(TRANSPORTS)} "
                             "(no TLS in Debian's sipp)")
        if target is not None and target[0] != HOST:
            raise ValueError("sipp may only send to 127.0.0.1")
        run_dir = self.tmpdir / f"sipp-{scenario_path.stem}-{uuid.uuid4().hex[:6]}"
        run_dir.mkdir(parents=True)
        for name, path in (inputs or {}).items():
            shutil.copyfile(path, run_dir / name)
        local_port = local_port or free_port()
        files = {
            "stats": run_dir / "stats.csv",
            "errors": run_dir / "errors.log",
            "messages": run_dir / "messages.log",
            "screen": run_dir / "screen.log",
        }
        argv = [
            self.binary, "-sf", scenario_path,
            "-t", TRANSPORTS[transport],
            "-i", HOST, "-p", str(local_port),
            "-m", str(calls),
            "-timeout", f"{timeout:g}s", "-timeout_error",
            "-max_retrans", "3",
            "-nostdin",
            "-trace_stat", "-stf", files["stats"],
            "-trace_err", "-error_file", files["errors"],
            "-trace_msg", "-message_file", files["messages"],
            "-trace_screen", "-screen_file", files["screen"],
        ]
        if rows is not None:
            csv = run_dir / "injection.csv"
            csv.write_text("SEQUENTIAL\n" + "".join(";".join(r) + ";\n" for r in rows))
            argv += ["-inf", csv]
        for name, value in (keys or {}).items():
            argv += ["-key", name, value]
        argv += list(extra_args)
        if target is not None:
            argv.append(f"{target[0]}:{target[1]}")
        process = Process(argv, name=f"sipp {scenario_path.name}", log_path=run_dir / "sipp.log",
                          cwd=run_dir, max_lifetime=timeout + 30).start()
        if target is None:  # a UAS: what the test sends must find it listening
            try:
                wait_until(lambda: process.alive() and _listening(transport, local_port),
                           timeout=10, what=f"sipp to listen on {transport} {local_port}",
                           on_timeout=process.log_tail)
            except BaseException:
                process.stop()
                raise
        return SippRun(process, files, local_port, timeout)

    def run(self, scenario: Path | str, target: tuple[str, int] | None = None,
            **kwargs: object) -> SippResult:
        """Run sipp to the end (bounded by `timeout`) and return its result."""
        return self.start(scenario, target, **kwargs).wait()  # type: ignore[arg-type]


def _listening(transport: str, port: int) -> bool:
    """Whether a socket is bound to 127.0.0.1:`port` (UDP) or listens on it (TCP)."""
    table = "/proc/net/udp" if transport == "udp" else "/proc/net/tcp"
    wanted = f"0100007F:{port:04X}"
    with open(table) as lines:
        next(lines)
        for line in lines:
            fields = line.split()
            # TCP: state 0A is LISTEN; UDP sockets have no listening state.
            if fields[1] == wanted and (transport == "udp" or fields[3] == "0A"):
                return True
    return False
