"""Which kind takes a remote m-line: a file transfer's m=message line (a=file-selector) is not
a chat, a screen-sharing m=application line (application/x-rfb) is; what an incoming offer is
announced with (session.new's "file", "screen"); lines the kinds refuse, and why."""

from __future__ import annotations

import pytest

from sipd.sessions.sdp import SDPError, parse_sdp
from sipd.sessions.streams import announced, default_registry

HEAD = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
PATH = "a=path:msrp://192.0.2.1:2855/abc;tcp\r\n"


def offer(*lines: str):
    return parse_sdp((HEAD + "".join(lines)).encode())


FILE = ("m=message 2855 TCP/MSRP *\r\n" + PATH + "a=accept-types:*\r\na=sendonly\r\n"
        'a=file-selector:name:"My %22report%22.pdf" type:application/pdf size:52114 '
        "hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E\r\n"
        "a=file-transfer-id:vBnG916bdberum2fFEABR1FR3ExZMUrd\r\n")
CHAT = "m=message 2855 TCP/MSRP *\r\n" + PATH + "a=accept-types:message/cpim text/plain\r\n"
SCREEN = ("m=application 2855 TCP/MSRP *\r\n" + PATH + "a=accept-types:application/x-rfb\r\n"
          "a=rfbsetup:passive\r\n")


def test_each_line_goes_to_its_kind():
    registry = default_registry()
    kinds = [registry.kind_for(line).name for line in offer(FILE, CHAT, SCREEN).media]
    assert kinds == ["file-transfer", "chat", "screen-sharing"]


def test_an_incoming_file_and_screen_are_announced():
    fields = announced(offer(FILE, SCREEN), default_registry())
    assert fields["file"] == {
        "name": 'My "report".pdf', "size": 52114, "type": "application/pdf",
        "hash": "sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E",
        "pull": False}
    assert fields["screen"] == {"role": "view"}  # they share: we would view
    pull = FILE.replace("a=sendonly", "a=recvonly")
    assert announced(offer(pull), default_registry())["file"]["pull"] is True


def test_lines_a_file_transfer_cannot_take_say_why():
    kind = default_registry().get("file-transfer")
    sendrecv = offer(FILE.replace("a=sendonly\r\n", "")).media[0]
    assert "sendonly" in (kind.line_refusal(None, sendrecv) or "")  # type: ignore[arg-type]
    no_size = offer(FILE.replace(" size:52114", "")).media[0]
    # doubango's default selector: RFC 5547 makes the size optional, the line is taken
    assert kind.line_refusal(None, no_size) is None  # type: ignore[arg-type]
    past_end = offer(FILE + "a=file-range:52000-52115\r\n").media[0]
    assert "passes the end" in (kind.line_refusal(None, past_end) or "")  # type: ignore[arg-type]
    # a selector that cannot be read is the description's error (SDP parse: 488, the line)
    with pytest.raises(SDPError, match="20 bytes"):
        offer(FILE.replace("sha-1:72:24", "sha-1:72"))
    screen = default_registry().get("screen-sharing")
    odd = offer(SCREEN.replace("passive", "sideways")).media[0]
    assert "rfbsetup" in (screen.line_refusal(None, odd) or "")  # type: ignore[arg-type]
