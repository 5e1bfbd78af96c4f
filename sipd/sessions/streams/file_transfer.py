"""The file transfer kind (RFC 5547): one file in a session, over MSRP, m=message lines
with a=file-selector.

Push: we offer a=sendonly with the file's selector (name, type, size, sha-1 computed before,
in a worker thread), the peer answers recvonly (with a=file-range when it holds part of the
file already) and we send that range as one message asking for a success report. Pull: we
offer a=recvonly with a selector of what we want; the peer answers sendonly with the file's
full selector, and sends. An incoming push waits for the user (sessions.answer, with a path or
into files.download_dir) unless the account takes files from its contacts by itself; an
incoming pull is answered at once from files.share_dir (or refused when nothing matches).

What the user asked goes in the session's stream options under "file-transfer":
    {"mode": "push", "path": "/home/me/report.pdf", "selector": FileSelector(...)}
    {"mode": "pull", "selector": FileSelector(name="report.pdf")}
    {"path": "/where/to/save"}            # sessions.answer of an incoming push (optional)

Events (topic files): `file.transfer` {session, transfer, direction, account, remote, name,
size, type, hash, path?, state: started|completed|failed|cancelled, reason?} at the start and
end of the transfer, and `file.progress` {session, direction, name, transferred, size, rate}
at most 4 a second and once at the end. A file offered without a size (doubango's selector
gives only name and type) has `size` null until its message's length says it (the
`completed` event has it); it is taken whole, bounded by the disk, and never resumed. The
session ends "completed", or fails with the reason (a hash mismatch, a full disk, the peer
gone...); a cut transfer keeps its part, and
the same file offered again resumes where it stopped. A cut pull resumes the same way when
the same file is asked again of the same party: our offer names the kept part's whole file
(its hash too) and asks only for the missing octets with a=file-range (RFC 5547 §8). A
hangup while the file is on its way ends the session "cancelled" at both ends.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import trio

from ...files.errors import FileAttributeError
from ...files.naming import safe_name
from ...files.progress import Progress
from ...files.sdp import FileTransferMedia, new_transfer_id
from ...files.selector import FileSelector
from ...files.trio.receiver import FileReceiver
from ...files.trio.sender import DEFAULT_TYPE, FileRangeSource
from ...files.trio.service import FilesService
from ...files.trio.sharing import SharingRefused, find_shared
from ...files.trio.transfer import Outcome, receive_file, send_file
from ...msrp.sdp import MsrpMedia
from ...msrp.session import media_type_matches
from ...sip.errors import SipParseError
from ...sip.uri import parse_sip_uri
from ...msrp.trio.connection import ConnectionClosed, MsrpConnection
from ..sdp import MediaDescription, SessionDescription
from .base import Stream, StreamContext, StreamRefused, StreamState
from .msrp import MsrpKind, MsrpStream, msrp_problem

log = logging.getLogger(__name__)

FILE_TRANSFER = "file-transfer"
COMPLETED = "completed"
PEER_BYE_WAIT = 10.0  # seconds a receiver waits for the sender's BYE before its own
# The largest chunk taken from a peer (a bigger one is answered 413). Without it the MSRP
# session's limit would be our own chunk size, too tight for a peer that chunks bigger.
MAX_CHUNK_BYTES = 2 * 1024 * 1024


def files_service(resources: dict[str, Any]) -> FilesService | None:
    service = resources.get("files")
    return service if isinstance(service, FilesService) else None


def read_file_line(media: MediaDescription) -> FileTransferMedia:
    """The RFC 5547 attributes of a line (FileAttributeError: what is wrong)."""
    return FileTransferMedia.from_attributes((a.name, a.value) for a in media.attributes)


def chunk_type(file_type: str | None, accepted: list[str]) -> str:
    """The Content-Type of our file's chunks: the file's own when the peer's a=accept-types
    takes it, else application/octet-stream when that is taken (a peer listing only
    `message/CPIM application/octet-stream`, as doubango's does, would refuse image/png)."""
    own = file_type or DEFAULT_TYPE
    if media_type_matches(own.split(";", 1)[0].strip(), accepted) or \
            not media_type_matches(DEFAULT_TYPE, accepted):
        return own
    return DEFAULT_TYPE


def is_pull(media: MediaDescription) -> bool:
    """A remote offer that asks for a file of ours (the offerer receives)."""
    direction = media.direction
    return direction is not None and str(direction) == "recvonly"


def party(uri: str) -> str:
    """Who a remote URI names, for finding a pull's kept part again: user and host (the port
    and parameters of a contact address may change between two tries)."""
    try:
        parsed = parse_sip_uri(uri)
    except SipParseError:
        return uri
    return f"{parsed.user or ''}@{parsed.host.lower()}"


def describe(selector: FileSelector) -> dict[str, Any]:
    return {"name": selector.name, "size": selector.size, "type": selector.type,
            "hash": str(selector.hash) if selector.hash is not None else None}


class FileTransferKind(MsrpKind):
    name = FILE_TRANSFER
    media_type = "message"
    accept_types = ("*",)
    sends = ()  # what we send is the file's type, checked against the peer's line

    def recognises(self, media: MediaDescription) -> bool:
        return super().recognises(media) and media.has_attribute("file-selector")

    def unavailable(self, resources: dict[str, Any]) -> str | None:
        if files_service(resources) is None:
            return "file transfer is not available in this daemon"
        return msrp_problem(resources)

    def line_refusal(self, theirs: MsrpMedia, media: MediaDescription) -> str | None:
        try:
            read_file_line(media)
        except FileAttributeError as exc:
            return str(exc)
        direction = str(media.direction) if media.direction is not None else "sendrecv"
        if direction not in ("sendonly", "recvonly"):
            return (f"a file transfer line is sendonly (a file offered) or recvonly (a file "
                    f"asked for), not {direction}")
        return None

    def announce(self, media: MediaDescription) -> dict[str, Any]:
        try:
            selector = read_file_line(media).selector
        except FileAttributeError:
            return {}
        return {"file": {**describe(selector), "pull": is_pull(media)}}

    async def answers_itself(self, offer: SessionDescription, media: MediaDescription,
                             context: StreamContext) -> bool:
        if is_pull(media):
            return True  # answered from the share folder, or refused when nothing matches
        account, files = context.account, files_service(context.resources)
        if account is None or files is None or not account.accept_files_from_contacts:
            return False
        return await files.is_contact(account.id, context.remote)

    def new_stream(self, context: StreamContext, index: int) -> Stream:
        return FileTransferStream(self, context, index)


class FileTransferStream(MsrpStream):
    kind: FileTransferKind

    def __init__(self, kind: FileTransferKind, context: StreamContext, index: int) -> None:
        super().__init__(kind, context, index)
        self.options: dict[str, Any] = context.options.get(FILE_TRANSFER, {})
        self.file: FileTransferMedia | None = None  # our line's RFC 5547 attributes
        self.sending = False
        self.path: str | None = None  # the local file (sent, or saved once complete)
        self.receiver: FileReceiver | None = None
        self.outcome: Outcome | None = None
        self.transferred = 0
        self._direction_line = "sendonly"
        self._remote_line: MediaDescription | None = None
        self._conversing = False  # the transfer runs: it keeps its own part when cut
        self._resuming_pull = False  # our pull offered a kept part's missing range
        self._answered = False  # we sent the file and the peer answered every chunk 200

    def view(self) -> dict[str, Any]:
        view = super().view()
        if self.file is not None:
            view["file"] = {**describe(self.file.selector), "direction":
                            "outgoing" if self.sending else "incoming",
                            "transferred": self.transferred, "path": self.path}
            if self.outcome is not None:
                view["file"]["result"] = self.outcome.result
                view["file"]["reason"] = self.outcome.reason
        return view

    def _files(self) -> FilesService:
        files = files_service(self.context.resources)
        if files is None:
            raise StreamRefused("file transfer is not available in this daemon")
        return files

    # -- our line ------------------------------------------------------------------------------
    async def offer(self) -> MediaDescription:
        if self.file is None:
            selector = self.options.get("selector")
            if not isinstance(selector, FileSelector):
                raise StreamRefused("a file transfer stream is started by files.send or "
                                    "files.request")
            if self.options.get("mode") == "pull":
                self._direction_line = "recvonly"
                self.file = await self._resumed_pull(selector) or FileTransferMedia(
                    selector, transfer_id=new_transfer_id())
            else:
                self.sending = True
                self.path = str(self.options["path"])
                self.file = FileTransferMedia(selector, transfer_id=new_transfer_id(),
                                              disposition="attachment")
        return await super().offer()

    async def _resumed_pull(self, wanted: FileSelector) -> FileTransferMedia | None:
        """A pull of a file whose part we kept from the same party (a transfer cut, or this
        daemon stopped): the offer names the whole file (with its hash, so only that file
        answers) and asks only for the missing octets with a=file-range (RFC 5547 §8)."""
        files = self._files()
        record = files.parts.find_wanted(wanted, party(self.context.remote))
        where = self.options.get("path")
        if record is None or (where and str(where) != record.folder
                              and os.path.dirname(str(where)) != record.folder):
            return None
        try:
            receiver = await FileReceiver.create(record.folder, record.selector,
                                                 resume=record)
        except (OSError, ValueError):
            return None
        if receiver.transferred == 0:  # the part is gone: a fresh pull
            await receiver.abort()
            return None
        receiver.remote = record.remote
        self.receiver, self._resuming_pull = receiver, True
        return FileTransferMedia(record.selector, transfer_id=new_transfer_id(),
                                 range=receiver.range)

    async def answer(self, offer: SessionDescription,
                     offered: MediaDescription) -> MediaDescription:
        try:
            theirs = read_file_line(offered)
        except FileAttributeError as exc:
            raise StreamRefused(str(exc)) from None
        if is_pull(offered):
            await self._answer_pull(theirs)
        else:
            await self._answer_push(theirs)
        return await super().answer(offer, offered)

    async def _answer_pull(self, theirs: FileTransferMedia) -> None:
        try:
            found = await find_shared(self._files().share_dir(), theirs.selector)
        except SharingRefused as exc:
            raise StreamRefused(str(exc)) from None
        if found is None:
            raise StreamRefused(f"no shared file matches {theirs.selector.value() or 'nothing'}")
        path, selector = found
        self.sending, self.path, self._direction_line = True, str(path), "sendonly"
        self.file = FileTransferMedia(selector, transfer_id=theirs.transfer_id,
                                      range=theirs.range)

    async def _answer_push(self, theirs: FileTransferMedia) -> None:
        self._direction_line = "recvonly"
        self.receiver = await self._open_receiver(theirs.selector, self.options.get("path"))
        wanted = None if self.receiver.range.whole else self.receiver.range
        self.file = FileTransferMedia(theirs.selector, transfer_id=theirs.transfer_id,
                                      range=wanted)

    async def _open_receiver(self, selector: FileSelector, where: Any) -> FileReceiver:
        """The receiver of an incoming file: resuming a kept part of the same file, or a new
        part in `where` (a folder, or a file path whose name is then taken) or the download
        folder."""
        files = self._files()
        record = files.parts.find(selector)
        folder = files.download_dir()
        if where:
            where = str(where)  # absolute: the RPC checked
            if await trio.Path(where).is_dir():
                folder = where
            else:
                folder = os.path.dirname(where)
                selector = FileSelector(safe_name(os.path.basename(where)), selector.type,
                                        selector.size, selector.hash)
        try:
            if record is not None and (not where or record.folder == folder):
                receiver = await FileReceiver.create(record.folder, selector, resume=record)
            else:
                receiver = await FileReceiver.create(folder, selector)
        except (OSError, ValueError) as exc:
            raise StreamRefused(f"cannot save the file in {folder}: "
                                f"{getattr(exc, 'strerror', None) or exc}") from None
        return receiver

    def connect_options(self) -> dict[str, Any]:
        if self.sending:
            return {"accept_types": self.kind.accept_types, "max_message_size": None}
        # chunks straight to the file, no size limit but the selector's, and the success
        # report only once the file is whole and verified
        return {"accept_types": self.kind.accept_types, "max_message_size": None,
                "deliver_chunks": True, "owner_confirms": True,
                "max_chunk_bytes": MAX_CHUNK_BYTES}

    def extra_attributes(self) -> list[tuple[str, str | None]]:
        assert self.file is not None
        return [(self._direction_line, None), *self.file.attributes()]

    # -- the transfer --------------------------------------------------------------------------
    async def start(self, local: MediaDescription, remote: MediaDescription) -> None:
        self._remote_line = remote
        await super().start(local, remote)

    async def converse(self, connection: MsrpConnection, theirs: MsrpMedia) -> str:
        self.connected.set()
        self._conversing = True
        try:
            remote = self._remote_file()
        except FileAttributeError as exc:
            remote = None
            await self._finish(Outcome("failed", f"the peer's answer: {exc}", 0))
        if remote is not None:
            if self.sending:
                self.outcome = await self._send(connection, remote)
            else:
                self.outcome = await self._receive(connection, remote)
            await self._finish(self.outcome)
        reason = "the MSRP connection ended"
        async for event in connection.events:
            if isinstance(event, ConnectionClosed):
                reason = event.reason
        if self.outcome is not None and self.outcome.result == "cut":
            return f"peer gone: {self.outcome.reason}"
        return reason

    def _remote_file(self) -> FileTransferMedia | None:
        """The peer's RFC 5547 attributes. An answer taking our pushed file without echoing
        a=file-selector (RFC 5547 asks for it; some answerers leave it out) takes the file we
        offered: nothing in it is needed to send."""
        line = self._remote_line
        if line is None:
            return None
        if self.sending and self._we_offered and self.file is not None \
                and not line.has_attribute("file-selector"):
            return FileTransferMedia(self.file.selector, transfer_id=self.file.transfer_id)
        return read_file_line(line)

    async def _send(self, connection: MsrpConnection, remote: FileTransferMedia) -> Outcome:
        assert self.file is not None and self.path is not None
        selector = self.file.selector
        size = selector.size or 0
        wanted = remote.range if remote.range is not None else self.file.range
        try:
            source = FileRangeSource.open(self.path, wanted)
        except (OSError, FileAttributeError) as exc:
            return Outcome("failed", f"cannot read {self.path}: {exc}", 0)
        self._announce("started", offset=size - source.size)
        try:
            direct = all(media is not None and len(media.path) == 1
                         for media in (self.local_media, self.remote_media))
            accepted = self.remote_media.accept_types if self.remote_media else ["*"]
            return await send_file(connection, source, chunk_type(selector.type, accepted),
                                   self._progress, size=size, direct=direct,
                                   on_answered=self._taken)
        finally:
            source.close()

    async def _receive(self, connection: MsrpConnection, remote: FileTransferMedia) -> Outcome:
        assert self.file is not None
        if self._resuming_pull and self.receiver is not None \
                and not self.receiver.selector.same_file(remote.selector):
            return Outcome("failed", f"the peer offers {remote.selector.value()}, not the "
                                     f"file whose part we resume", 0)
        if self.receiver is None:  # a pull of ours: the answer says which file comes
            wanted = self.file.selector
            got = remote.selector
            if not wanted.matches(got):
                return Outcome("failed", f"the peer offers {got.value()}, not what was asked "
                                         f"for", 0)
            self.file = FileTransferMedia(got, transfer_id=self.file.transfer_id)
            try:
                self.receiver = await self._open_receiver(got, self.options.get("path"))
            except StreamRefused as exc:
                return Outcome("failed", str(exc), 0)
            self.receiver.remote = party(self.context.remote)  # a cut pull resumes from this party
        self._announce("started", offset=self.receiver.transferred)
        files = self._files()
        return await receive_file(connection, self.receiver, self._progress,
                                  on_kept=files.parts.put,
                                  on_verified=lambda: self.context.outcome(COMPLETED, False))

    def _taken(self) -> None:
        self._answered = True

    def _progress(self, report: Progress) -> None:
        self.transferred = report.transferred
        assert self.file is not None
        self.context.publish("file.progress", {
            "session": self.context.session_id,
            "direction": "outgoing" if self.sending else "incoming",
            "name": self.file.selector.name, "transferred": report.transferred,
            "size": report.size, "rate": round(report.rate, 1), "final": report.final})

    def _announce(self, state: str, reason: str | None = None, *,
                  offset: int | None = None) -> None:
        """file.transfer; `offset`: at the start, the octets the receiver held already (a
        resumed transfer sends only the rest)."""
        assert self.file is not None
        account = self.context.account
        data: dict[str, Any] = {
            "session": self.context.session_id, "transfer": self.file.transfer_id,
            "direction": "outgoing" if self.sending else "incoming",
            "account": account.id if account is not None else "",
            "remote": self.context.remote, **describe(self.file.selector),
            "path": self.path, "state": state}
        if reason is not None:
            data["reason"] = reason
        if offset is not None:
            data["offset"] = offset
        self.context.publish("file.transfer", data)

    async def _finish(self, outcome: Outcome) -> None:
        """The transfer is over: say so, and end the session with its result (a receiver lets
        the sender hang up first, which it does once its success report came)."""
        self.outcome = outcome
        if self.receiver is not None and outcome.path is not None:
            self.path = outcome.path
            if self.file is not None and self.file.selector.size is None:
                # offered without a size (doubango): the message's length said it
                sel = self.file.selector
                self.file.selector = FileSelector(sel.name, sel.type,
                                                  self.receiver.incoming.size, sel.hash)
            record = self.receiver.record()
            await self._files().parts.remove(record.folder, record.part)
        if self.file is not None:
            state = {"completed": "completed", "failed": "failed"}.get(
                outcome.result, "cancelled")
            self._announce(state, None if outcome.result == "completed" else outcome.reason)
        if outcome.result == "cut":
            return  # the connection's end says why
        failed = outcome.result == "failed"
        self.context.outcome(outcome.reason, failed)
        if not self.sending:  # the sender hangs up once our report came
            with trio.move_on_after(PEER_BYE_WAIT):
                await self._ended.wait()
        if self.state is StreamState.ENDED:
            return
        if failed:
            self._failed(outcome.reason)
        else:
            self.context.end(COMPLETED)

    def end_meaning(self) -> str | None:
        """A hangup, ours or the peer's, while the file is on its way cancels it: the session
        ends "cancelled" at both ends (not with the hangup's own reason). Once the peer took
        every chunk (200s) a hangup before its success report (one that sends none) ends a
        transfer that is "completed"."""
        if self.state is not StreamState.ACTIVE or self.failure is not None or (
                self.outcome is not None and self.outcome.result != "cut"):
            return None  # not started, broken, or its own end said already
        # cut: the connection closed just before the hangup that closed it came
        return COMPLETED if self._answered else "cancelled"

    async def end(self, reason: str | None = None) -> None:
        await super().end(reason)
        if self.receiver is not None and not self._conversing:
            record = await self.receiver.abort(keep=True)
            files = files_service(self.context.resources)
            if record is not None and files is not None:
                await files.parts.put(record)

