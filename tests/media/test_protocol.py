"""The pure parts of the media package: control protocol, codec choice, port slices."""

from __future__ import annotations

import pytest

from sipd.media import protocol
from sipd.media.codecs import bridge_clock_rate, select_codecs
from sipd.media.process import port_slices

PJSUA_CODECS = ["speex/16000/1", "speex/8000/1", "speex/32000/1", "iLBC/8000/1", "GSM/8000/1",
                "PCMU/8000/1", "PCMA/8000/1", "G722/16000/1", "L16/44100/1", "L16/44100/2"]


def test_messages_are_json_lines_and_split_anywhere() -> None:
    wire = (protocol.encode(protocol.command(1, "status"))
            + protocol.encode(protocol.event("call.dtmf", call=2, digit="5")))
    decoder = protocol.LineDecoder()
    messages = []
    for byte in range(len(wire)):  # the worst split: one byte at a time
        messages += decoder.feed(wire[byte:byte + 1])
    assert messages == [{"id": 1, "cmd": "status"},
                        {"event": "call.dtmf", "call": 2, "digit": "5"}]
    assert protocol.is_reply(protocol.reply_ok(1)) and protocol.is_event(messages[1])


def test_a_broken_line_is_reported_without_losing_the_next() -> None:
    decoder = protocol.LineDecoder()
    assert decoder.feed(b'not json\n[1]\n{"id": 3, "ok": true}\n') == [{"id": 3, "ok": True}]
    assert len(decoder.errors) == 2


def test_an_endless_line_is_an_error() -> None:
    with pytest.raises(protocol.ProtocolError, match="longer than"):
        protocol.LineDecoder().feed(b"x" * (protocol.MAX_LINE_BYTES + 1))


def test_unknown_commands_are_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="unknown media worker command"):
        protocol.command(1, "reboot")


def test_session_header_is_found_case_insensitively_in_the_head_only() -> None:
    invite = ("INVITE sip:media@127.0.0.1:5070;transport=tcp SIP/2.0\r\n"
              "Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
              "x-sipd-session:  abc-123 \r\n"
              "Content-Length: 24\r\n\r\n"
              "X-Sipd-Session: in-body\r\n")
    assert protocol.header_value(invite, protocol.SESSION_HEADER) == "abc-123"
    assert protocol.header_value(invite, "Subject") is None


@pytest.mark.parametrize("requested, order, unknown", [
    (["PCMU", "PCMA"], ["PCMU/8000/1", "PCMA/8000/1"], []),
    (["speex/16000", "opus"], ["speex/16000/1"], ["opus"]),
    (["speex"], ["speex/16000/1", "speex/8000/1", "speex/32000/1"], []),
    (["g722", "G722/16000/1"], ["G722/16000/1"], []),  # a repeat is no unknown codec
    (["nothing"], [], ["nothing"]),
])
def test_codec_names_select_pjsua_codec_ids(requested: list[str], order: list[str],
                                            unknown: list[str]) -> None:
    assert select_codecs(requested, PJSUA_CODECS) == (order, unknown)


@pytest.mark.parametrize("codecs, rate", [
    (["PCMU", "PCMA"], 8000),  # narrowband only: the bridge needs no resampling
    (["pcmu/8000/1", "GSM", "iLBC", "speex/8000"], 8000),
    (["PCMU", "G722"], 16000),  # one wideband codec: pjsua's default clock
    (["speex"], 16000),  # every speex rate, the wideband ones too
    (["PCMU", "AMR-WB"], 16000),
    ([], 16000), ([" "], 16000),  # no codec named: the defaults, G722 among them
])
def test_the_bridge_runs_at_8_khz_only_for_narrowband_codecs(codecs: list[str],
                                                              rate: int) -> None:
    assert bridge_clock_rate(codecs) == rate


def test_the_rtp_port_range_is_split_evenly_between_workers() -> None:
    assert port_slices(50000, 50500, 4) == [(50000, 124), (50124, 124), (50248, 124),
                                            (50372, 124)]
    slices = port_slices(40001, 40100, 3)  # odd start: RTP stays on even ports
    assert all(start % 2 == 0 and size % 2 == 0 for start, size in slices)
    assert slices[-1][0] + slices[-1][1] - 1 <= 40100
    with pytest.raises(ValueError, match="too small for 4 media workers"):
        port_slices(50000, 50020, 4)
