"""File transfer steps between sipd daemons over RPC (a file pushed, answered, verified at both
ends), shared by the file transfer tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import trio

from tests.harness.peer import DaemonPeer

FILE_TOPICS = ("sessions", "files")
TRANSFER_TIMEOUT = 120.0


def make_file(path: Path, size: int, seed: bytes = b"") -> Path:
    """A file of `size` bytes that is not all one byte (random blocks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = seed + os.urandom(min(size, 1024 * 1024))
    with open(path, "wb") as file:
        left = size
        while left:
            file.write(block[:left])
            left -= min(left, len(block))
    return path


def sha1_of(path: Path | str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        while block := file.read(1024 * 1024):
            digest.update(block)
    return "sha-1:" + ":".join(f"{b:02X}" for b in digest.digest())


async def offer_file(a: DaemonPeer, b: DaemonPeer, path: Path, *, to: str | None = None,
                     account: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A sends `path` to B: (A's session, B's session.new)."""
    mark = b.events.mark()
    started = await a.call("files.send", account=account or a.id, to=to or b.uri("tcp"),
                           path=str(path))
    assert started["streams"] == ["file-transfer"]
    new = await b.events.wait("session.new", direction="incoming", since=mark)
    return started, new


async def push(a: DaemonPeer, b: DaemonPeer, path: Path, *, to: str | None = None,
               save: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """A sends `path`, B takes it: (A's session id, B's, B's completed file.transfer)."""
    size = (await trio.Path(path).stat()).st_size
    started, new = await offer_file(a, b, path, to=to)
    assert new["streams"] == ["file-transfer"]
    assert new["file"]["name"] == path.name and new["file"]["size"] == size
    assert new["file"]["hash"] == sha1_of(path) and new["file"]["pull"] is False
    await b.state(new["id"], "ringing")
    params: dict[str, Any] = {"id": new["id"]}
    if save is not None:
        params["path"] = save
    await b.call("sessions.answer", **params)
    done = await b.events.wait("file.transfer", session=new["id"], state="completed",
                               timeout=TRANSFER_TIMEOUT)
    sent = await a.events.wait("file.transfer", session=started["id"], state="completed",
                               timeout=TRANSFER_TIMEOUT)
    assert sent["hash"] == done["hash"] == sha1_of(path)
    assert sha1_of(done["path"]) == sha1_of(path)
    for peer, sid in ((a, started["id"]), (b, new["id"])):
        ended = await peer.state(sid, "ended")
        assert ended["reason"] == "completed", ended
        final = await peer.events.wait("file.progress", session=sid, final=True)
        assert final["transferred"] == final["size"] == size
    return started["id"], new["id"], done
