"""The browser-audio benchmark: mouth-to-ear latency of a call whose audio comes from a web
page (sipd's /audio/SESSION channel: the page's 20 ms frames of 16-bit PCM at 16 kHz over a
WebSocket, relayed to the call's media worker), and the CPU the daemon and its worker spend
per such call, against a baresip-to-baresip call in the same run.

Both calls go to the same far end: a baresip that sends back what it hears (its `aubridge`
module joins its player to its source), so a click the near end says comes back to it.

- sipd: a program speaks the page's protocol on the channel (as js/softphone.js does after
  its AudioWorklet): silence, with a 20 ms click every half second. Mouth-to-ear is the
  time from sending a click's frame to receiving the frame it comes back in: the page's
  channel, the daemon, the worker's conference bridge and RTP, the echo, and back.
- baresip: the caller plays the same clicks from a WAV file (aufile) and its sndfile filter
  writes what it encodes and what it decodes as it goes; the benchmark watches both files
  grow, and mouth-to-ear is the time between a click entering the encoder and leaving the
  decoder.

Neither includes the capture and playback buffers of a sound card or a browser (the page's
player starts at 50 ms, docs/decisions.md), which add the same to both.

    python -m bench --only web-audio          # about a minute; writes the doc
    python -m bench --only web-audio --quick  # a short try; leaves the doc alone
"""

from __future__ import annotations

import json
import math
import statistics
import struct
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from trio_websocket import open_websocket_url

from sipctl.client import connect
from tests.harness.process import SipdProcess
from tests.peers.baresip import Baresip
from tests.peers.ports import rtp_port_range

from .procs import cpu_seconds, process_tree
from .report import machine, markdown_table

SECTION = "web-audio-bench"
RATE, FRAME = 16000, 320  # the page's audio: 16 kHz, 20 ms frames
CLICK_EVERY = 25  # frames: a click each 0.5 s
LOUD = 4000  # a sample above this is the click (the rest is silence)
EVENT_TIMEOUT = 20.0  # a bound, not a measurement


@dataclass(frozen=True)
class Options:
    seconds: float = 20.0  # of clicks per call (latency and CPU over the same time)


QUICK = Options(seconds=4.0)


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)  # seconds
    cpu: dict[str, float] = field(default_factory=dict)  # process name -> CPU seconds
    wall: float = 0.0
    clicks: int = 0
    frames: int = 0  # received by the page's side
    peak: int = 0
    note: str = ""


def _say(text: str) -> None:
    print(text, flush=True)


def click(rate: int, samples: int) -> list[int]:
    """A 20 ms burst of 1 kHz at -6 dBFS."""
    return [int(16000 * math.sin(2 * math.pi * 1000 * i / rate)) for i in range(samples)]


def write_clicks(path: Path, seconds: float, rate: int = 8000) -> Path:
    """Silence with a 20 ms click every half second, 16-bit mono, as baresip's aufile plays."""
    frame = rate // 50
    samples: list[int] = []
    for n in range(int(seconds * 50)):
        samples += click(rate, frame) if n % CLICK_EVERY == 0 else [0] * frame
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return path


class EchoBaresip(Baresip):
    """A baresip that answers by itself and sends back what it hears (aubridge: its player
    writes into a bridge its source reads from)."""

    def __init__(self, base: Path, account: str) -> None:
        super().__init__(base, account, register=False, answermode="auto", record=False)

    def _write_config(self) -> None:
        super()._write_config()
        config = self.config_dir / "config"
        lines = config.read_text().splitlines()
        lines = [line for line in lines if not line.startswith("audio_source ")]
        lines += ["module aubridge.so", "audio_source aubridge,echo",
                  "audio_player aubridge,echo"]
        config.write_text("\n".join(lines) + "\n")


def pair(sent: list[float], heard: list[float]) -> list[float]:
    """Each click heard, timed from the last click sent before it (clicks are 0.5 s apart,
    far more than any round trip here)."""
    latencies = []
    for at in heard:
        before = [s for s in sent if s <= at]
        if before and at - before[-1] < CLICK_EVERY * 0.02:
            latencies.append(at - before[-1])
    return latencies


QUIET_GAP = 40  # samples under LOUD before a loud one for it to start a click


def loud_onsets(samples: tuple[int, ...], quiet: int) -> tuple[int, int]:
    """How many clicks start in `samples` (a loud sample after QUIET_GAP quiet ones), and the
    quiet samples it ends with; `quiet` is the count the previous chunk ended with."""
    count = 0
    for sample in samples:
        if abs(sample) > LOUD:
            if quiet >= QUIET_GAP:
                count += 1
            quiet = 0
        else:
            quiet += 1
    return count, quiet


# --- sipd: the page's channel into a call to the echo -------------------------------------------

async def sipd_run(options: Options, base: Path, echo_uri: str) -> Run:
    run = Run()
    settings = {"log.level": "warning", "rtp.media_address": "127.0.0.1",
                "rtp.port_range": rtp_port_range(), "media.max_workers": 1,
                "rtp.audio_codecs": ["PCMU"], "rtp.srtp": "disabled"}
    daemon = SipdProcess(base, settings, name="web")
    daemon.start()
    try:
        async with connect(daemon.endpoint) as rpc:
            await rpc.call("events.subscribe", {"topics": ["sessions"]})
            started = await rpc.call("sessions.start", {"account": "local", "to": echo_uri,
                                                        "audio_device": "web"})
            session = started["id"]
            with trio.fail_after(EVENT_TIMEOUT):
                async for message in rpc.events:
                    data = message.get("params", {}).get("data", {})
                    if data.get("id") == session and data.get("state") == "established":
                        break
                    if data.get("id") == session and data.get("state") in ("failed", "ended"):
                        raise RuntimeError(f"the call to the echo failed: {data}")
            state = await rpc.call("system.state", {})
            url = state["web"]["url"].replace("http://", "ws://") + f"audio/{session}"
            pids = {"sipd": daemon.proc.pid if daemon.proc else 0,
                    "media worker": next(w["pid"] for w in state["media"]["workers"]
                                         if session in w["sessions"])}
            await _speak_and_listen(url, daemon.endpoint.token or "", options, pids, run)
            await rpc.call("sessions.end", {"id": session})
    finally:
        daemon.stop()
    return run


async def _speak_and_listen(url: str, token: str, options: Options, pids: dict[str, int],
                            run: Run) -> None:
    loud = struct.pack(f"<{FRAME}h", *click(RATE, FRAME))
    quiet = b"\x00" * (2 * FRAME)
    sent: list[float] = []
    heard: list[float] = []
    async with open_websocket_url(url) as ws:
        await ws.send_message(json.dumps({"token": token}))
        if not json.loads(await ws.get_message()).get("ready"):
            raise RuntimeError("the audio channel did not open")

        async def listen() -> None:
            quiet = QUIET_GAP
            while True:
                frame = await ws.get_message()
                if not isinstance(frame, bytes):
                    continue
                now = time.monotonic()
                samples = struct.unpack(f"<{len(frame) // 2}h", frame)
                run.frames += 1
                run.peak = max(run.peak, max(map(abs, samples), default=0))
                count, quiet = loud_onsets(samples, quiet)
                heard.extend([now] * count)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen)
            frames = int(options.seconds * 50)
            start_cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
            began = time.monotonic()
            next_at = trio.current_time()  # trio's clock paces; time.monotonic() times
            for n in range(frames):  # paced like a microphone: one frame each 20 ms
                if n % CLICK_EVERY == 0:
                    sent.append(time.monotonic())
                await ws.send_message(loud if n % CLICK_EVERY == 0 else quiet)
                next_at += 0.02
                await trio.sleep_until(next_at)
            run.wall = time.monotonic() - began
            run.cpu = {name: cpu_seconds(pid) - start_cpu[name] for name, pid in pids.items()}
            await trio.sleep(1.0)  # the last click's way back
            nursery.cancel_scope.cancel()
    run.clicks = len(sent)
    run.latencies = pair(sent, heard)


# --- baresip -> the echo: clicks from a file, timed as the sndfile filter writes them -------------

def tree_cpu(pids: list[int]) -> float:
    return sum(used for used in map(cpu_seconds, pids) if not math.isnan(used))


class Growing:
    """A WAV file baresip's sndfile filter is writing: the clicks in what it appends, each
    with the time the watch saw it."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("rb")
        self.offset = 0
        self.quiet = QUIET_GAP
        self.times: list[float] = []

    def skip(self) -> None:
        head = self.file.read(4096)
        at = head.find(b"data", 12)
        data = at + 8 if at >= 0 else 44
        size = self.file.seek(0, 2)
        self.offset = data + (max(size, data) - data) // 2 * 2

    def poll(self, now: float) -> None:
        self.file.seek(self.offset)
        fresh = self.file.read()
        fresh = fresh[:len(fresh) // 2 * 2]
        if not fresh:
            return
        self.offset += len(fresh)
        count, self.quiet = loud_onsets(struct.unpack(f"<{len(fresh) // 2}h", fresh),
                                        self.quiet)
        self.times.extend([now] * count)

    def close(self) -> None:
        self.file.close()


def baresip_run(options: Options, base: Path, echo: Baresip) -> Run:
    run = Run()
    clicks = write_clicks(base / "clicks.wav", options.seconds + 2)
    caller = Baresip(base, "sip:alice@127.0.0.1", register=False, record=True,
                     audio_source=clicks).start()
    try:
        caller.dial(f"sip:echo@127.0.0.1:{echo.sip_port}")
        caller.wait_event("CALL_ESTABLISHED", timeout=EVENT_TIMEOUT)
        assert caller.process is not None and echo.process is not None
        # baresip runs under `timeout` and `stdbuf` (tests/peers/proc.py): its whole tree
        trees = {"baresip (caller)": process_tree(caller.process.pid),
                 "baresip (echo)": process_tree(echo.process.pid)}
        deadline = time.monotonic() + EVENT_TIMEOUT
        while not (caller.recordings()["sent"] and caller.recordings()["received"]):
            if time.monotonic() > deadline:
                raise RuntimeError("baresip wrote no recording")
            time.sleep(0.005)
        files = [Growing(caller.recordings()[kind][0]) for kind in ("sent", "received")]
        for growing in files:
            growing.skip()  # what was written before the watch has no time of its own
        start_cpu = {name: tree_cpu(tree) for name, tree in trees.items()}
        began = time.monotonic()
        while time.monotonic() - began < options.seconds:
            now = time.monotonic()
            for growing in files:
                growing.poll(now)
            time.sleep(0.002)
        run.wall = time.monotonic() - began
        run.cpu = {name: tree_cpu(tree) - start_cpu[name] for name, tree in trees.items()}
        run.clicks = len(files[0].times)
        run.latencies = pair(files[0].times, files[1].times)
        for growing in files:
            growing.close()
        caller.hangup()
    finally:
        caller.stop()
    return run


# --- the report ---------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def latency_cells(run: Run) -> list[str]:
    values = sorted(run.latencies)
    if not values:
        return ["–", "–", "–", f"0 of {run.clicks}"]
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    return [ms(statistics.median(values)), ms(values[0]), ms(p95),
            f"{len(values)} of {run.clicks}"]


def section(sipd: Run, baresip: Run, options: Options) -> str:
    rows = [["page → sipd → baresip echo → sipd → page", *latency_cells(sipd)],
            ["baresip → baresip echo → baresip", *latency_cells(baresip)]]
    cpu_rows = [[name, f"{seconds / run.wall:.1%}" if run.wall else "–"]
                for run in (sipd, baresip) for name, seconds in run.cpu.items()]
    sipd_cpu = sum(sipd.cpu.values()) / sipd.wall if sipd.wall else math.nan
    caller_cpu = baresip.cpu.get("baresip (caller)", math.nan) / baresip.wall \
        if baresip.wall else math.nan
    notes = "".join(f"\n\nNote: {run.note}" for run in (sipd, baresip) if run.note)
    return f"""## Browser audio

`python -m bench --only web-audio` ({options.seconds:.0f} s of clicks per call, one call at a
time; {machine()}). A click every 0.5 s goes to a baresip that sends back what it hears and
is timed on its way back (bench/web_audio_bench.py says how). The sipd row is what a page's
call adds between its AudioWorklet and its player: the /audio WebSocket, the daemon's relay,
the worker's conference bridge (16 kHz, 20 ms), PCMU over RTP and the same back; the
baresip row is one baresip's encoder to its decoder. Neither includes a sound card's or a
browser's own buffers (the page's player adds 50 ms, docs/decisions.md). Times in ms: from
sending a click's frame to receiving the frame it comes back in (sipd), from the encoder's
file gaining the click to the decoder's (baresip).

{markdown_table(["mouth to ear (round trip)", "median", "min", "p95", "clicks heard"], rows)}

CPU per call while it talks (share of one core, over the same {options.seconds:.0f} s):

{markdown_table(["process", "CPU"], cpu_rows)}

A page's call costs the daemon and its worker {sipd_cpu:.1%} of a core together, against
{caller_cpu:.1%} for the baresip that places the same call.{notes}
"""


def run(options: Options, write: bool) -> str:
    with tempfile.TemporaryDirectory(prefix="sipd-web-audio-bench-") as tmp:
        base = Path(tmp)
        echo = EchoBaresip(base, "sip:echo@127.0.0.1").start()
        try:
            echo_uri = f"sip:echo@127.0.0.1:{echo.sip_port}"
            _say("browser audio: the page's channel through sipd to a baresip echo ...")
            try:
                sipd = trio.run(sipd_run, options, base, echo_uri)
            except Exception as error:  # reported, as the other benchmarks do
                sipd = Run(note=f"the sipd run failed: {error!s:.200}")
            echo.wait_event("CALL_CLOSED", timeout=EVENT_TIMEOUT)
            _say("browser audio: baresip to the same echo ...")
            try:
                baresip = baresip_run(options, base, echo)
            except Exception as error:
                baresip = Run(note=f"the baresip run failed: {error!s:.200}")
        finally:
            echo.stop()
    text = section(sipd, baresip, options)
    print()
    print(text)
    if write:
        from .report import write_section
        print(f"\nwrote the {SECTION} section of {write_section(SECTION, text)}")
    return text


def main(argv: Any = None) -> None:
    run(QUICK, write=False)


if __name__ == "__main__":
    main()
