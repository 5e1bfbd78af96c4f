"""RFB between an MSRP connection and a TCP stream, both ways, until one side ends.

    # sharing: our screen's VNC server is the TCP side
    vnc = await connect_vnc_server("127.0.0.1", 5900)
    end = await bridge(connection, vnc)       # end.reason; end.vnc_side: the VNC side left

    # viewing: a local VNC viewer connects to a loopback port we report
    async with ViewerPort() as port:          # port.port: tell the user (sessions.get)
        viewer = await port.accept()          # the first viewer; the port closes then
        end = await bridge(connection, viewer)

What the TCP side writes goes out as MSRP messages of application/x-rfb (one per read, at most
`read_size` bytes, cut into the connection's chunks), Success-Report no and Failure-Report
partial, as python-sipsimple sends them; what arrives (chunks, or whole messages when the
connection does not deliver chunks) is written to the TCP side in the order it came. Both
ways are bounded: at most `max_unsent` messages wait in the MSRP session before the TCP side
is read again, and the MSRP connection is not read while the TCP side does not take what came.
`bridge` closes the TCP stream and returns why it ended, and whether the VNC (TCP) side
ended it rather than the MSRP one; the MSRP connection stays its owner's
(the stream kind closes it with that reason).
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from sipd.msrp.events import ChunkReceived, MessageFailed, MessageReceived
from sipd.msrp.trio.connection import ConnectionClosed, MsrpConnection

from ..sdp import CONTENT_TYPE, FAILURE_REPORT

READ_SIZE = 64 * 1024
MAX_UNSENT = 16  # messages of up to READ_SIZE bytes waiting in the session: 1 MiB
CONNECT_TIMEOUT = 5.0


class VncConnectError(Exception):
    """The local VNC server cannot be reached; the message says where and why."""


async def connect_vnc_server(host: str = "127.0.0.1", port: int = 5900, *,
                             timeout: float = CONNECT_TIMEOUT) -> trio.SocketStream:
    try:
        with trio.fail_after(timeout):
            return await trio.open_tcp_stream(host, port)
    except trio.TooSlowError:
        raise VncConnectError(f"no answer from the VNC server at {host}:{port} within "
                              f"{timeout:g} s") from None
    except OSError as exc:
        raise VncConnectError(f"cannot reach the VNC server at {host}:{port}: "
                              f"{exc.strerror or exc}") from exc


class ViewerPort:
    """A listening port on a loopback address for the one VNC viewer of a session."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.port = 0
        self._listener: trio.SocketListener | None = None

    async def __aenter__(self) -> ViewerPort:
        listeners = await trio.open_tcp_listeners(self.requested_port, host=self.host)
        self._listener = listeners[0]
        for extra in listeners[1:]:
            await extra.aclose()
        self.port = self._listener.socket.getsockname()[1]
        return self

    async def accept(self) -> trio.SocketStream:
        """The first viewer that connects; the port stops listening then."""
        assert self._listener is not None, "use ViewerPort as an async context manager"
        stream = await self._listener.accept()
        await self.aclose()
        return stream

    async def aclose(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.aclose()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@dataclass(frozen=True)
class BridgeEnd:
    reason: str
    vnc_side: bool  # the VNC server or viewer left (or failed), not the MSRP connection

    def __str__(self) -> str:
        return self.reason


async def bridge(connection: MsrpConnection, stream: trio.abc.Stream, *,
                 read_size: int = READ_SIZE, max_unsent: int = MAX_UNSENT) -> BridgeEnd:
    """Carries RFB both ways until either side ends; closes `stream`; says why it ended."""
    reason = "closed"
    vnc_side = False

    async def tcp_to_msrp(cancel: trio.CancelScope) -> None:
        nonlocal reason, vnc_side
        session = connection.session
        while True:
            await connection.wait_sendable(max_unsent)
            try:
                data = await stream.receive_some(read_size)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                reason, vnc_side = f"the VNC connection failed: {exc}", True
                break
            if not data:
                reason, vnc_side = "the VNC side closed its connection", True
                break
            if connection.closed or session.closed_reason is not None:
                reason = session.closed_reason or "the MSRP connection closed"
                break
            connection.send_message(bytes(data), CONTENT_TYPE, failure_report=FAILURE_REPORT)
        cancel.cancel()

    async def msrp_to_tcp(cancel: trio.CancelScope) -> None:
        nonlocal reason, vnc_side
        async for event in connection.events:
            data = b""
            if isinstance(event, ChunkReceived):
                data = event.data
            elif isinstance(event, MessageReceived):
                data = event.body
            elif isinstance(event, MessageFailed):
                reason = f"the peer did not take RFB data: {event.reason}"
                break
            elif isinstance(event, ConnectionClosed):
                reason = event.reason
                break
            if data:
                try:
                    await stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    reason, vnc_side = f"the VNC connection failed: {exc}", True
                    break
        else:
            reason = "the MSRP connection closed"
        cancel.cancel()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tcp_to_msrp, nursery.cancel_scope)
            nursery.start_soon(msrp_to_tcp, nursery.cancel_scope)
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()
    return BridgeEnd(reason, vnc_side)
