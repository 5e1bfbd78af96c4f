"""Files between two real sipd daemons, direct, driven over RPC: pushed over MSRP (TLS with
fingerprints, the default), answered into the download folder or a path, hashes checked at
both ends; pulls from the share folder; declined transfers; hostile names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.harness.files import FILE_TOPICS, make_file, offer_file, push, sha1_of
from tests.harness.peer import daemon_settings
from tests.harness.process import SipdProcess, running
from tests.harness.sipctl import run_sipctl, sipctl_json

PEER_TOPICS = FILE_TOPICS


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shared")
    make_file(folder / "pulled.bin", 300_000)
    return folder


@pytest.fixture(scope="module")
def daemons(tmp_path_factory, shared) -> Iterator[list[SipdProcess]]:
    """Two daemons sharing `shared` (files.share_dir); each saves into its own
    <state-dir>/downloads (the default for a daemon run by root)."""
    settings = {**daemon_settings(), "files.share_dir": str(shared)}
    with running(tmp_path_factory.mktemp("daemons"), settings) as started:
        yield started


@pytest.mark.parametrize("size", [0, 1, 10 * 1024 * 1024])
async def test_a_file_is_pushed_and_verified_at_both_ends(a, b, tmp_path, size):
    source = make_file(tmp_path / f"file of {size} bytes.bin", size)
    _, b_id, done = await push(a, b, source)
    saved = trio.Path(done["path"])
    assert saved.name == source.name and (await saved.stat()).st_size == size
    assert not [p for p in await saved.parent.iterdir() if p.name.endswith(".part")]
    got = await b.call("sessions.get", id=b_id)
    assert got["lines"][0]["file"]["result"] == "completed"


async def test_a_file_is_saved_where_the_answer_says(a, b, tmp_path):
    source = make_file(tmp_path / "report.pdf", 5000)
    target = tmp_path / "elsewhere"
    target.mkdir()
    _, _, done = await push(a, b, source, save=str(target / "renamed.pdf"))
    assert done["path"] == str(target / "renamed.pdf")
    _, _, again = await push(a, b, source, save=str(target))
    assert again["path"] == str(target / "report.pdf")


async def test_a_declined_transfer_sends_nothing(a, b, tmp_path):
    source = make_file(tmp_path / "unwanted.bin", 1000)
    started, new = await offer_file(a, b, source)
    await b.state(new["id"], "ringing")
    await b.call("sessions.reject", id=new["id"])
    failed = await a.state(started["id"], "failed")
    assert failed["code"] == 603
    assert not a.events.matching("file.transfer", session=started["id"])
    assert not b.events.matching("file.transfer", session=new["id"])


@pytest.mark.parametrize(("offered", "saved"), [
    ("..\x07evil<x>.sh", "evil_x_.sh"),      # leading dots, a control character, <>
    ("CON.txt", "_CON.txt"),                 # a Windows device name
    ("..%2F..%2Fescape.sh", "..%2F..%2Fescape.sh"[2:]),  # no decoding into a path
])
async def test_a_hostile_name_stays_in_the_download_folder(a, b, tmp_path, offered, saved):
    source = make_file(tmp_path / offered, 10)
    _, _, done = await push(a, b, source)
    assert Path(done["path"]).parent.name == "downloads"
    assert Path(done["path"]).name == saved


async def test_a_pull_is_answered_from_the_share_folder(a, b, shared, tmp_path):
    mark = b.events.mark()
    started = await a.call("files.request", account=a.id, to=b.uri("tcp"), name="pulled.bin",
                           path=str(tmp_path))
    new = await b.events.wait("session.new", direction="incoming", since=mark)
    assert new["file"]["pull"] is True and new["file"]["name"] == "pulled.bin"
    done = await a.events.wait("file.transfer", session=started["id"], state="completed",
                               timeout=60)
    assert done["path"] == str(tmp_path / "pulled.bin")
    assert sha1_of(done["path"]) == sha1_of(shared / "pulled.bin") == done["hash"]
    await b.events.wait("file.transfer", session=new["id"], state="completed")
    assert (await a.state(started["id"], "ended"))["reason"] == "completed"


async def test_a_pull_of_nothing_shared_is_refused(a, b):
    started = await a.call("files.request", account=a.id, to=b.uri("tcp"), name="absent.txt")
    failed = await a.state(started["id"], "failed")
    assert failed["code"] == 488


async def test_sipctl_sends_a_file_and_the_peer_accepts_it_into_a_path(daemons, a, b, tmp_path):
    source = make_file(tmp_path / "via sipctl.txt", 200_000)
    target = tmp_path / "accepted"
    await trio.Path(target).mkdir()
    mark = b.events.mark()
    results = []

    async def send() -> None:
        results.append(await trio.to_thread.run_sync(
            lambda: run_sipctl(daemons[0], "send-file", "local", b.uri("tcp"), str(source))))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        new = await b.events.wait("session.new", direction="incoming", since=mark)
        await b.state(new["id"], "ringing")
        accepted = await trio.to_thread.run_sync(
            lambda: run_sipctl(daemons[1], "accept", new["id"], str(target)))
        assert accepted.returncode == 0, accepted.stderr
    (sent,) = results
    assert sent.returncode == 0, sent.stderr
    assert "via sipctl.txt: outgoing complete" in sent.stdout
    assert "of 200000 bytes (100 %)" in sent.stdout  # plain lines: stdout is no terminal
    assert sha1_of(target / "via sipctl.txt") == sha1_of(source)


async def test_sipctl_gets_a_shared_file(daemons, shared, tmp_path):
    got = await trio.to_thread.run_sync(lambda: run_sipctl(
        daemons[0], "get-file", "local", f"sip:local@127.0.0.1:{_tcp_port(daemons[1])}"
        ";transport=tcp", "pulled.bin", "--save", str(tmp_path)))
    assert got.returncode == 0, got.stderr
    assert sha1_of(tmp_path / "pulled.bin") == sha1_of(shared / "pulled.bin")
    missing = await trio.to_thread.run_sync(lambda: run_sipctl(
        daemons[0], "get-file", "local", f"sip:local@127.0.0.1:{_tcp_port(daemons[1])}"
        ";transport=tcp", "not there.bin"))
    assert missing.returncode == 1 and "did not complete" in missing.stderr


def _tcp_port(daemon: SipdProcess) -> int:
    state = sipctl_json(daemon, "call", "system.state")
    return int(state["sip"]["ports"]["tcp"])
