"""Parsing session descriptions (RFC 8866 §5, §9): text or bytes to a SessionDescription.

Lenient where real user agents differ and the meaning stays clear (bare LF line ends, blank
lines at the end, runs of spaces, unknown line types and attributes, a rejected m= line without
formats, no t= line); strict where a mistake would be guessed at: the first line is v=0, o= and
s= are present once, every line is `<letter>=<value>`, the lines of known grammar (o, c, b, t,
r, z, m and the attributes of sdp_attributes) are well formed, no session-level line follows
an m= line, every accepted stream has a c= line. Anything else raises SDPError with the line
number, and nothing else escapes `parse_sdp`.

Bytes are decoded as UTF-8 with surrogate escapes: a description in another character set
(RFC 8866 `a=charset`) still round-trips unchanged.
"""

from __future__ import annotations

from .fields import MAX_LINES, MAX_MEDIA, MAX_SDP_SIZE, SDPError
from .model import Line, MediaDescription, SessionDescription, check_line

SESSION_ONLY = frozenset("vosuetrzp")
SINGLE_AT_SESSION_LEVEL = frozenset("vosc")


def parse_sdp(data: bytes | bytearray | memoryview | str) -> SessionDescription:
    """Parse a session description; raises SDPError (and nothing else) when it is malformed."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        if len(data) > MAX_SDP_SIZE:
            raise SDPError(f"the description is {len(data)} bytes, more than {MAX_SDP_SIZE}")
        text = data.decode("utf-8", "surrogateescape")
    elif isinstance(data, str):
        if len(data) > MAX_SDP_SIZE or (len(data) * 4 > MAX_SDP_SIZE and len(
                data.encode("utf-8", "surrogatepass")) > MAX_SDP_SIZE):
            raise SDPError(f"the description is more than {MAX_SDP_SIZE} bytes")
        text = data
    else:
        raise SDPError(f"a description is bytes or text, not {type(data).__name__}")

    raw = text.split("\n")
    if raw[-1] == "":
        raw.pop()
    raw = [line[:-1] if line.endswith("\r") else line for line in raw]
    while raw and raw[-1] == "":
        raw.pop()  # blank lines after the last line, as some bodies end
    if not raw:
        raise SDPError("the description is empty")
    if len(raw) > MAX_LINES:
        raise SDPError(f"the description has {len(raw)} lines, more than {MAX_LINES}")

    session: list[Line] = []
    media: list[MediaDescription] = []
    seen: set[str] = set()
    for number, text_line in enumerate(raw, 1):
        if text_line[1:2] != "=":
            raise SDPError(f"not a <type>=<value> line: {text_line[:40]!r}", number)
        line = check_line(text_line[0], text_line[2:], number)
        if line.type == "v" and number != 1:
            raise SDPError("v= must be the first line", number)
        if number == 1 and line.type != "v":
            raise SDPError(f"a description starts with v=0, not {text_line[:20]!r}", number)
        if line.type == "m":
            if len(media) >= MAX_MEDIA:
                raise SDPError(f"more than {MAX_MEDIA} m= lines", number)
            media.append(MediaDescription(line))
        elif media:
            if line.type in SESSION_ONLY:
                raise SDPError(f"{line.type}= is a session-level line, not allowed after m=",
                               number)
            media[-1].lines.append(line)
        else:
            if line.type in SINGLE_AT_SESSION_LEVEL and line.type in seen:
                raise SDPError(f"more than one {line.type}= line at session level", number)
            seen.add(line.type)
            session.append(line)
    for kind, name in (("o", "origin"), ("s", "session name")):
        if kind not in seen:
            raise SDPError(f"the description has no {kind}= ({name}) line")
    description = SessionDescription(session, media)
    if description.connection is None:
        for section in media:
            if not section.is_rejected and section.connection is None:
                raise SDPError(f"m={section.type} has no c= line and the session has none",
                               section.media_line.number)
    return description

