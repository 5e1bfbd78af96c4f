"""The browser softphone in a real chromium: the page calls baresip with "Talk through this
browser", its (fake) microphone plays 440 Hz and baresip plays 880 Hz. baresip's recording of
the call must hold the page's 440 Hz, and the audio the page received over its audio channel
baresip's 880 Hz."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.harness.audio import finished_wav
from tests.harness.peer import daemon_settings
from tests.harness.process import SipdProcess
from tests.media.audio import goertzel_power, read_wav
from tests.media.conftest import db
from tests.peers.baresip import write_tone_wav
from tests.web.browser import Page, Shots, open_browser
from tests.web.test_page import connected, rpc

pytestmark = [pytest.mark.peer, pytest.mark.daemon]

PAGE_TONE, PEER_TONE = 440, 880
TALK_FRAMES = 100  # 2 s of 20 ms frames received by the page


@pytest.fixture
def sipd(tmp_path: Path) -> Iterator[SipdProcess]:
    daemon = SipdProcess(tmp_path, daemon_settings())
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        print(daemon.log())


def test_page_talks_with_baresip(sipd: SipdProcess, baresip_factory: Any, tmp_path: Path,
                                 shots: Shots) -> None:
    bob = baresip_factory(account="sip:bob@127.0.0.1", register=False, answermode="auto",
                          audio_source=write_tone_wav(tmp_path / "bob.wav",
                                                      frequency=PEER_TONE))
    microphone = write_tone_wav(tmp_path / "microphone.wav", frequency=PAGE_TONE, rate=16000)
    with open_browser(microphone) as browser:
        page = Page(browser)
        p = page.page
        heard: list[bytes] = []

        def watch(ws: Any) -> None:
            if "/audio/" in ws.url:
                ws.on("framereceived",
                      lambda payload: heard.append(payload) if isinstance(payload, bytes) else None)

        p.on("websocket", watch)
        p.goto(rpc(sipd, "web.link")["url"])
        connected(page)
        assert p.get_by_label("Talk through this browser").is_checked()
        p.get_by_label("Call", exact=True).fill(f"sip:bob@127.0.0.1:{bob.sip_port}")
        p.get_by_role("button", name="Call", exact=True).click()
        card = p.locator("#calls li[data-state=established]")
        card.wait_for()
        card.locator(".audio-mark").wait_for()
        session = card.get_attribute("data-id")
        assert rpc(sipd, "sessions.get", id=session)["audio_device"] == "web"
        # talk until the page has had 2 s of bob's audio (Playwright delivers the frames
        # while the page is waited on)
        deadline = time.monotonic() + 20
        while len(heard) < TALK_FRAMES:
            assert time.monotonic() < deadline, f"the page got {len(heard)} frames in 20 s"
            p.wait_for_timeout(100)
        shots.take(page, "softphone")
        assert page.serious_violations() == []
        card.get_by_role("button", name="Hang up").click()
        p.locator(f"#calls li[data-id='{session}'][data-state=ended]").wait_for()
        bob.wait_event("CALL_CLOSED")
        assert page.errors == []
        page.close()

    samples = [s for frame in heard[10:] for s in struct.unpack(f"<{len(frame) // 2}h", frame)]
    assert db(goertzel_power(samples, 16000, PEER_TONE)) > \
        db(goertzel_power(samples, 16000, PAGE_TONE)) + 20
    recording = trio.run(finished_wav, lambda: bob.recordings()["received"], "bob's recording")
    bob_heard, rate = read_wav(recording)
    assert db(goertzel_power(bob_heard, rate, PAGE_TONE)) > \
        db(goertzel_power(bob_heard, rate, PEER_TONE)) + 20
