"""files.*: file transfer (RFC 5547) in sessions of their own, over MSRP.

`files.send` pushes a local file to someone (a path on the daemon's host, or the id of a file
the web page uploaded to `POST /uploads`); `files.request` asks someone for a file of
theirs (a pull). Both return the new session; an incoming push comes as `session.new` with
`"streams": ["file-transfer"]` and `"file": {name, size, type, hash, pull}`, and is taken with
`sessions.answer({"id", "path"?})` (into files.download_dir, or the folder or file path given)
or refused with `sessions.reject`. An incoming pull is answered from files.share_dir.

Events on the `files` topic: `file.transfer` {session, transfer, direction, account, remote,
name, size, type, hash, path, state: started|completed|failed|cancelled, reason?} and
`file.progress` {session, direction, name, transferred, size, rate (bytes/s), final} at most
4 a second per transfer and once at the end. `size` is null for a file offered without one
(doubango does), in `session.new`, and in progress until a chunk's Byte-Range gives the
message's length. The session ends with reason "completed", or fails with the reason (hash
mismatch, disk full, peer gone...).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Annotated

from ...files.errors import FileAttributeError
from ...files.selector import FileSelector, parse_hash
from ...files.trio.sender import describe_file, guess_type
from ...files.trio.uploads import UnknownUpload
from ...sessions.streams.file_transfer import FILE_TRANSFER
from ..api import method
from ..dispatch import CallContext
from ..errors import NOT_FOUND, UNAVAILABLE, RpcError, invalid_params
from ..registry import Constraint
from .sessions import _errors

ACCOUNT = Annotated[str, Constraint(minLength=1),
                    "the account's id (\"local\": the daemon's own address)"]
TO = Annotated[str, Constraint(minLength=1), "whom, e.g. sip:bob@example.com"]


@method("files.send")
async def send(
    ctx: CallContext, *, account: ACCOUNT, to: TO,
    path: Annotated[str, Constraint(minLength=1),
                    "the file to send: an absolute path on the daemon's host"] | None = None,
    upload: Annotated[str, Constraint(minLength=1, maxLength=64),
                      "instead of path: the id `POST /uploads` of the web page's server "
                      "gave for a file uploaded to the daemon (offered under the name it was "
                      "uploaded with; deleted when this session ends)"] | None = None,
) -> dict:
    """Send a file: a session with one file-transfer stream offering it (its sha-1 is
    computed first). Give `path` or `upload`. Returns the session; `file.progress` and
    `file.transfer` follow, and the session ends "completed" once the receiver confirmed the
    whole file."""
    if (path is None) == (upload is None):
        raise invalid_params("give either path (a file on the daemon's host) or upload (an "
                             "id from POST /uploads)", field="path")
    if upload is not None:
        return await _send_upload(ctx, account, to, upload)
    assert path is not None
    if not os.path.isabs(path):
        raise invalid_params("path must be absolute (a path on the daemon's host)", field="path")
    try:
        selector = await describe_file(path)
    except OSError as exc:
        raise invalid_params(f"cannot read {path}: {exc.strerror or exc}", field="path") \
            from None
    return await _start(ctx, account, to, path, selector)


async def _send_upload(ctx: CallContext, account: str, to: str, upload_id: str) -> dict:
    uploads = ctx.service.uploads
    if uploads is None:
        raise RpcError(UNAVAILABLE, "Unavailable", {
            "reason": "uploads are off: their folder in the state directory cannot be used "
                      "(see the daemon's log)"})
    try:
        upload = uploads.take(upload_id)
    except UnknownUpload as exc:
        raise RpcError(NOT_FOUND, "upload not found", {"reason": str(exc), "id": upload_id,
                                                       "field": "upload"}) from None
    try:
        selector = dataclasses.replace(await describe_file(upload.path), name=upload.name,
                                       type=guess_type(upload.name))
        session = await _start(ctx, account, to, str(upload.path), selector)
    except BaseException:
        uploads.release(upload_id)
        raise
    uploads.bind(upload_id, session["id"])
    return session


async def _start(ctx: CallContext, account: str, to: str, path: str,
                 selector: FileSelector) -> dict:
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

