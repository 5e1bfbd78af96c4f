"""files.*: file transfer (RFC 5547) in sessions of their own, over MSRP.

`files.send` pushes a local file to someone; `files.request` asks someone for a file of
theirs (a pull). Both return the new session; an incoming push comes as `session.new` with
`"streams": ["file-transfer"]` and `"file": {name, size, type, hash, pull}`, and is taken with
`sessions.answer({"id", "path"?})` (into files.download_dir, or the folder or file path given)
or refused with `sessions.reject`. An incoming pull is answered from files.share_dir.

Events on the `files` topic: `file.transfer` {session, transfer, direction, account, remote,
name, size, type, hash, path, state: started|completed|failed|cancelled, reason?} and
`file.progress` {session, direction, name, transferred, size, rate (bytes/s), final} at most
4 a second per transfer and once at the end. The session ends with reason "completed", or
fails with the reason (hash mismatch, disk full, peer gone...).
"""

from __future__ import annotations

import os
from typing import Annotated

from ...files.errors import FileAttributeError
from ...files.selector import FileSelector, parse_hash
from ...files.trio.sender import describe_file
from ...sessions.streams.file_transfer import FILE_TRANSFER
from ..api import method
from ..dispatch import CallContext
from ..errors import invalid_params
from ..registry import Constraint
from .sessions import _errors

ACCOUNT = Annotated[str, Constraint(minLength=1),
                    "the account's id (\"local\": the daemon's own address)"]
TO = Annotated[str, Constraint(minLength=1), "whom, e.g. sip:bob@example.com"]


@method("files.send")
async def send(
    ctx: CallContext, *, account: ACCOUNT, to: TO,
    path: Annotated[str, Constraint(minLength=1),
                    "the file to send: an absolute path on the daemon's host"],
) -> dict:
    """Send a file: a session with one file-transfer stream offering it (its sha-1 is
    computed first). Returns the session; `file.progress` and `file.transfer` follow, and the
    session ends "completed" once the receiver confirmed the whole file."""
    if not os.path.isabs(path):
        raise invalid_params("path must be absolute (a path on the daemon's host)", field="path")
    try:
        selector = await describe_file(path)
    except OSError as exc:
        raise invalid_params(f"cannot read {path}: {exc.strerror or exc}", field="path") \
            from None
    with _errors():
        sender = ctx.service.useragent.accounts.get(account)
        return await ctx.service.useragent.sessions.start(
            sender, to, [FILE_TRANSFER],
            options={FILE_TRANSFER: {"mode": "push", "path": path, "selector": selector}})


@method("files.request")
async def request(
    ctx: CallContext, *, account: ACCOUNT, to: TO,
    name: Annotated[str | None, Constraint(minLength=1), "the file's name"] = None,
    hash: Annotated[str | None, Constraint(minLength=1),
                    "its hash, e.g. sha-1:AB:CD:..."] = None,
    size: Annotated[int | None, Constraint(minimum=0), "its size in bytes"] = None,
    type: Annotated[str | None, Constraint(minLength=1), "its media type"] = None,
    path: Annotated[str | None, Constraint(minLength=1),
                    "where to save it: a folder or a file path (default files.download_dir)"
                    ] = None,
) -> dict:
    """Ask someone for a file of theirs (an RFC 5547 pull): give at least one of name, hash,
    size, type. Returns the session; the file arrives as an incoming transfer would."""
    try:
        file_hash = parse_hash(hash) if hash is not None else None
    except FileAttributeError as exc:
        raise invalid_params(str(exc), field="hash") from None
    if "/" not in (type or "x/y"):
        raise invalid_params("type is a media type: type/subtype", field="type")
    wanted = FileSelector(name=name, type=type, size=size, hash=file_hash)
    if wanted.empty:
        raise invalid_params("say which file: name, hash, size or type", field="name")
    if path is not None and not os.path.isabs(path):
        raise invalid_params("path must be absolute", field="path")
    with _errors():
        sender = ctx.service.useragent.accounts.get(account)
        return await ctx.service.useragent.sessions.start(
            sender, to, [FILE_TRANSFER],
            options={FILE_TRANSFER: {"mode": "pull", "selector": wanted, "path": path}})

