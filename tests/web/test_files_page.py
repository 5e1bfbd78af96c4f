"""File transfer in the page, in a real headless chromium: the page on daemon A sends a file
picked in the browser to daemon B (uploaded to A, offered, accepted by B over RPC) and its bar
reaches 100 % with B holding the same bytes; B pushes a file to A, the page shows the offer,
accepts it, and the file downloaded through the page's link has B's bytes. Screenshots of the
files view and the offer, and an axe-core check of both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness.files import FILE_TOPICS, TRANSFER_TIMEOUT, make_file, sha1_of
from tests.harness.peer import daemon_settings
from tests.harness.process import SipdProcess, running
from tests.web.browser import Page, Shots
from tests.web.test_chat_page import remote
from tests.web.test_page import connected, logged_in, rpc, tab

pytestmark = [pytest.mark.peer, pytest.mark.daemon]

TOPICS = (*FILE_TOPICS, "chat")
SIZE = 3 * 1024 * 1024 + 123


def test_page_sends_and_receives_files(tmp_path: Path, browser: Any, shots: Shots) -> None:
    sent = make_file(tmp_path / "from the page ✓.bin", SIZE)
    pushed = make_file(tmp_path / "holiday plan.pdf", 700_000)
    with running(tmp_path, daemon_settings()) as (a, b), remote(b, TOPICS) as bob, \
            remote(a, TOPICS) as alice:
        assert bob.peer is not None and alice.peer is not None
        page = Page(browser)
        p = page.page
        p.goto(rpc(a, "web.link")["url"])
        connected(page)

        # the page sends a file it picked; B accepts it
        tab(page, "Files")
        p.get_by_label("Send to").fill(bob.peer.uri("tcp"))
        p.get_by_label("File", exact=True).set_input_files(str(sent))
        p.get_by_role("button", name="Send file").click()
        new = bob.wait("session.new", direction="incoming")
        assert new["streams"] == ["file-transfer"]
        assert new["file"]["name"] == sent.name and new["file"]["size"] == SIZE
        assert new["file"]["hash"] == sha1_of(sent)
        row = p.locator(f"#transfers li[data-state=waiting]:has-text('{sent.name}')")
        row.wait_for()
        bob.wait("session.state", id=new["id"], state="ringing")
        bob.call("sessions.answer", id=new["id"])
        done = bob.wait("file.transfer", session=new["id"], state="completed",
                        timeout=TRANSFER_TIMEOUT)
        assert sha1_of(done["path"]) == sha1_of(sent)
        finished = p.locator(f"#transfers li[data-state=completed]:has-text('{sent.name}')")
        finished.wait_for(timeout=TRANSFER_TIMEOUT * 1000)
        bar = finished.get_by_role("progressbar", name=f"Sending {sent.name}")
        assert bar.evaluate("bar => [bar.value, bar.max]") == [SIZE, SIZE]
        assert bar.get_attribute("aria-valuetext") == "100 %"
        assert "100 %" in finished.inner_text() and "Completed" in finished.inner_text()
        # the page saw the bar move: A reported progress of its send up to the end
        final = alice.wait("file.progress", direction="outgoing", final=True)
        assert final["transferred"] == final["size"] == SIZE

        # B pushes a file to A: the page is asked, accepts, and downloads it
        offer = bob.call("files.send", account="local", to=alice.peer.uri("tcp"),
                         path=str(pushed))
        dialog = p.get_by_role("alertdialog", name="Incoming file")
        dialog.wait_for()
        assert pushed.name in dialog.inner_text() and "684 KB" in dialog.inner_text()
        shots.take(page, "file-offer")
        assert page.serious_violations() == []
        dialog.get_by_role("button", name="Accept").click()
        received = alice.wait("file.transfer", direction="incoming", state="completed",
                              timeout=TRANSFER_TIMEOUT)
        assert sha1_of(received["path"]) == sha1_of(pushed)
        bob.wait("session.state", id=offer["id"], state="ended", reason="completed")
        link = p.get_by_role("link", name=f"Download {pushed.name}")
        link.wait_for()
        assert dialog.is_hidden()
        with p.expect_download() as download:
            link.click()
        saved = Path(download.value.path())
        assert download.value.suggested_filename == pushed.name
        assert saved.read_bytes() == pushed.read_bytes()

        p.get_by_role("tab", name="Files").focus()
        shots.take(page, "files")
        assert page.serious_violations() == []

        # after a reload the transfers come back from the history, the link with them
        p.reload()
        connected(page)
        tab(page, "Files")
        again = p.get_by_role("link", name=f"Download {pushed.name}")
        again.wait_for()
        assert p.locator(f"#transfers li[data-state=completed]:has-text('{sent.name}')"
                         ).count() == 1
        with p.expect_download() as download:
            again.click()
        assert Path(download.value.path()).read_bytes() == pushed.read_bytes()
        assert page.errors == []
        page.close()


def test_declined_files_both_ways(tmp_path: Path, browser: Any) -> None:
    picked = make_file(tmp_path / "unwanted.txt", 1000)
    with running(tmp_path, daemon_settings()) as (a, b), remote(b, TOPICS) as bob, \
            remote(a, TOPICS) as alice:
        assert bob.peer is not None and alice.peer is not None
        page = Page(browser)
        p = page.page
        p.goto(rpc(a, "web.link")["url"])
        connected(page)
        page.resize("phone")  # the narrow layout works the same

        # a file past web.max_upload_bytes: refused, and the page says why
        tab(page, "Files")
        p.get_by_label("Send to").fill(bob.peer.uri("tcp"))
        rpc(a, "settings.set", key="web.max_upload_bytes", value=999)
        p.get_by_label("File", exact=True).set_input_files(str(picked))
        p.get_by_role("button", name="Send file").click()
        refused = p.get_by_role("alert").filter(has_text="Could not send unwanted.txt")
        refused.wait_for()
        assert "larger than web.max_upload_bytes (999 bytes)" in refused.inner_text()
        assert not list((a.state_dir / "uploads").iterdir())

        # B declines what the page sends: the row says so, with the code
        rpc(a, "settings.reset", key="web.max_upload_bytes")
        p.get_by_label("File", exact=True).set_input_files(str(picked))
        p.get_by_role("button", name="Send file").click()
        new = bob.wait("session.new", direction="incoming")
        bob.wait("session.state", id=new["id"], state="ringing")
        bob.call("sessions.reject", id=new["id"])
        declined = p.locator("#transfers li[data-state=declined]:has-text('unwanted.txt')")
        declined.wait_for()
        assert "Declined: 603" in declined.inner_text()
        assert not list((a.state_dir / "uploads").iterdir())  # its upload went with it

        # the page takes back an offer B has not answered yet
        p.get_by_label("File", exact=True).set_input_files(str(picked))
        p.get_by_role("button", name="Send file").click()
        second = bob.wait("session.new", direction="incoming",
                          predicate=lambda data: data["id"] != new["id"])
        waiting = p.locator("#transfers li[data-state=waiting]")
        waiting.get_by_role("button", name="Cancel").click()
        bob.wait("session.state", id=second["id"], state="failed")
        p.locator("#transfers li[data-state=cancelled]").wait_for()
        assert not list((a.state_dir / "uploads").iterdir())

        # the page declines what B offers
        offer = bob.call("files.send", account="local", to=alice.peer.uri("tcp"),
                         path=str(picked))
        dialog = p.get_by_role("alertdialog", name="Incoming file")
        dialog.get_by_role("button", name="Decline").click()
        ended = bob.wait("session.state", id=offer["id"], state="failed")
        assert ended["code"] == 603
        dialog.wait_for(state="hidden")
        assert p.locator("#transfers li[data-state=declined]").count() == 2
        assert p.locator("#transfers li[data-state=cancelled]").count() == 1
        assert alice.call("history.files")["files"] == []  # nothing was received
        assert len(page.errors) == 1 and "status of 413" in page.errors[0]  # the refusal
        page.close()


def test_a_transfer_of_unknown_size_shows_the_bytes_not_a_share(tmp_path: Path,
                                                                  browser: Any) -> None:
    """A file offered without its size (doubango's default selector) arrives with no share to
    show: its bar is indeterminate and the row says the bytes so far; once complete, 100 %.
    The page's own FilesView module, driven with the events the daemon sends."""
    daemon = SipdProcess(tmp_path, daemon_settings())
    daemon.start()
    try:
        page = logged_in(browser, daemon)
        tab(page, "Files")
        shown = page.page.evaluate(UNKNOWN_SIZE_SCRIPT)
    finally:
        daemon.stop()
    (busy_valued, busy_text, busy_numbers), (done_valued, done_text, _) = shown
    assert not busy_valued and busy_text == "3.0 MB" and busy_numbers.startswith("3.0 MB")
    assert done_valued and done_text == "100 %"


UNKNOWN_SIZE_SCRIPT = """async () => {
        const { FilesView } = await import("/js/files.js");
        const view = new FilesView(null, null, () => {}, () => {});
        const seen = [];
        const look = () => {
            const row = document.querySelector("#transfers li[data-session=nosize]");
            const bar = row.querySelector("progress");
            seen.push([bar.hasAttribute("value"), bar.getAttribute("aria-valuetext"),
                       row.querySelector(".transfer-numbers").textContent]);
        };
        view.upsert({ session: "nosize", direction: "incoming", remote: "sip:bob@127.0.0.1",
                      name: "plan.pdf", state: "transferring", transferred: 3 * 1024 * 1024 });
        look();
        view.upsert({ session: "nosize", state: "completed", transferred: 5 * 1024 * 1024 });
        look();
        return seen;
    }"""
