"""The browser softphone in a real chromium: the page calls baresip with "Talk through this
browser", its (fake) microphone plays 440 Hz and baresip plays 880 Hz. baresip's recording of
the call must hold the page's 440 Hz, and the audio the page received over its audio channel
baresip's 880 Hz. And two pages on two daemons call each other, each hearing the other's
tone (the callee answers through its browser)."""

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
from tests.harness.process import SipdProcess, running
from tests.media.audio import goertzel_power, read_wav
from tests.media.conftest import db
from tests.peers.baresip import write_tone_wav
from tests.web.browser import Page, Shots, launch, open_browser, open_playwright
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


def audio_frames(page: Page) -> list[bytes]:
    """The binary messages the page receives on its audio channels, as they come."""
    frames: list[bytes] = []

    def watch(ws: Any) -> None:
        if "/audio/" in ws.url:
            ws.on("framereceived",
                  lambda payload: frames.append(payload) if isinstance(payload, bytes) else None)

    page.page.on("websocket", watch)
    return frames


def talk(page: Page, *frame_lists: list[bytes]) -> None:
    """Until each list holds 2 s of audio (Playwright delivers frames while a page waits)."""
    deadline = time.monotonic() + 20
    while any(len(frames) < TALK_FRAMES for frames in frame_lists):
        got = [len(frames) for frames in frame_lists]
        assert time.monotonic() < deadline, f"only {got} frames in 20 s"
        page.page.wait_for_timeout(100)


def assert_tone(frames: list[bytes], expected: float, other: float) -> None:
    samples = [s for frame in frames[10:] for s in struct.unpack(f"<{len(frame) // 2}h", frame)]
    assert db(goertzel_power(samples, 16000, expected)) > \
        db(goertzel_power(samples, 16000, other)) + 20


def test_two_pages_on_two_daemons_talk(tmp_path: Path) -> None:
    """Page A calls daemon B's local account; page B answers through its browser."""
    tones = {"a": 440, "b": 1000}
    with running(tmp_path, daemon_settings()) as (a, b), open_playwright() as playwright:
        pages: dict[str, Page] = {}
        heard: dict[str, list[bytes]] = {}
        for name, daemon in (("a", a), ("b", b)):
            browser = launch(playwright, write_tone_wav(tmp_path / f"{name}.wav",
                                                        frequency=tones[name], rate=16000))
            pages[name] = Page(browser)
            heard[name] = audio_frames(pages[name])
            pages[name].page.goto(rpc(daemon, "web.link")["url"])
            connected(pages[name])
        b_port = rpc(b, "system.state")["sip"]["ports"]["udp"]
        caller, callee = pages["a"].page, pages["b"].page
        caller.get_by_label("Call", exact=True).fill(f"sip:local@127.0.0.1:{b_port}")
        caller.get_by_role("button", name="Call", exact=True).click()
        incoming = callee.get_by_role("alertdialog", name="Incoming call")
        incoming.wait_for()
        incoming.get_by_role("button", name="Answer").click()
        for page in (caller, callee):
            page.locator("#calls li[data-state=established] .audio-mark").wait_for()
        talk(pages["a"], heard["a"], heard["b"])
        caller.locator("#calls li[data-state=established]").get_by_role(
            "button", name="Hang up").click()
        callee.locator("#calls li[data-state=ended]").wait_for()
        for page in pages.values():
            assert page.errors == []
            page.context.browser.close()
    assert_tone(heard["a"], tones["b"], tones["a"])
    assert_tone(heard["b"], tones["a"], tones["b"])


def test_page_talks_with_baresip(sipd: SipdProcess, baresip_factory: Any, tmp_path: Path,
                                 shots: Shots) -> None:
    bob = baresip_factory(account="sip:bob@127.0.0.1", register=False, answermode="auto",
                          audio_source=write_tone_wav(tmp_path / "bob.wav",
                                                      frequency=PEER_TONE))
    microphone = write_tone_wav(tmp_path / "microphone.wav", frequency=PAGE_TONE, rate=16000)
    with open_browser(microphone) as browser:
        page = Page(browser)
        p = page.page
        heard = audio_frames(page)
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
        talk(page, heard)
        shots.take(page, "softphone")
        assert page.serious_violations() == []
        card.get_by_role("button", name="Hang up").click()
        p.locator(f"#calls li[data-id='{session}'][data-state=ended]").wait_for()
        bob.wait_event("CALL_CLOSED")
        assert page.errors == []
        page.close()

    assert_tone(heard, PEER_TONE, PAGE_TONE)
    recording = trio.run(finished_wav, lambda: bob.recordings()["received"], "bob's recording")
    bob_heard, rate = read_wav(recording)
    assert db(goertzel_power(bob_heard, rate, PAGE_TONE)) > \
        db(goertzel_power(bob_heard, rate, PEER_TONE)) + 20
