"""A call's audio to and from a web page: a pjsua2 AudioMediaPort on the call's bridge port,
fed and read over a UDP socket on 127.0.0.1 that the daemon relays to the page's WebSocket.

Worker-only module (pjsua2). Frames are 16-bit little-endian mono PCM at 16 kHz, 20 ms
(640 bytes): the bridge's own clock rate and frame time, so pjsua converts nothing. The
bridge calls `onFrameReceived` (what the call hears, sent to the daemon at once) and
`onFrameRequested` (what the page said, from the jitter buffer) on its clock thread; a reader
thread fills the buffer from the socket. The socket is connected to the daemon's address, so
no other local process can speak into the call.
"""

from __future__ import annotations

import logging
import socket
import threading

import pjsua2 as pj

from sipd.media.jitter import FrameBuffer

log = logging.getLogger(__name__)

CLOCK_RATE = 16000
FRAME_USEC = 20000
FRAME_BYTES = CLOCK_RATE * FRAME_USEC // 1_000_000 * 2  # 640


class WebAudioPort(pj.AudioMediaPort):
    def __init__(self, sock: socket.socket, frames: FrameBuffer) -> None:
        super().__init__()
        self._sock = sock
        self._frames = frames
        self.sent = 0

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO or frame.size != FRAME_BYTES:
            return
        try:
            self._sock.send(bytes(frame.buf))
            self.sent += 1
        except OSError:
            pass  # the daemon is not reading, or has gone: the frame is simply lost

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        data = self._frames.pop()
        if data is None:
            frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
            frame.size = 0
            return
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(data)
        frame.size = len(data)


class WebAudioLink:
    """The port, its socket and its reader thread, for one call."""

    def __init__(self, name: str, peer: tuple[str, int]) -> None:
        self.frames = FrameBuffer()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.connect(peer)
        self.sock.settimeout(0.2)
        self.port = WebAudioPort(self.sock, self.frames)
        audio_format = pj.MediaFormatAudio()
        audio_format.init(pj.PJMEDIA_FORMAT_PCM, CLOCK_RATE, 1, FRAME_USEC, 16)
        self.port.createPort(name, audio_format)
        self._running = True
        self._reader = threading.Thread(target=self._read, name=f"{name}-reader", daemon=True)
        self._reader.start()
        self.connected_to: pj.AudioMedia | None = None

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _read(self) -> None:
        while self._running:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                if self._running:
                    continue  # e.g. ECONNREFUSED from an earlier send: keep reading
                return
            if len(data) == FRAME_BYTES:
                self.frames.push(data)

    def connect(self, call_port: pj.AudioMedia) -> None:
        """Both ways between the call's bridge port and ours (again after a re-INVITE)."""
        self.disconnect()
        call_port.startTransmit(self.port)
        self.port.startTransmit(call_port)
        self.connected_to = call_port

    def disconnect(self) -> None:
        call_port, self.connected_to = self.connected_to, None
        if call_port is None:
            return
        for source, sink in ((call_port, self.port), (self.port, call_port)):
            try:
                source.stopTransmit(sink)
            except pj.Error:
                pass  # the call's port went with its stream

    def close(self) -> None:
        self.disconnect()
        self._running = False
        self._reader.join(1)
        self.sock.close()

    def stats(self) -> dict[str, int]:
        return {"received": self.frames.received, "sent": self.port.sent,
                "dropped": self.frames.dropped, "missing": self.frames.missing}
