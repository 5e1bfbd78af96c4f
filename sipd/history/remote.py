"""The key a history row is filed under for its remote party: `user@host[:port]`.

The same party shows up as sip:bob@example.com, sips:bob@Example.com;transport=tls or
<sip:bob@example.com:5060;transport=tcp> depending on who wrote the header; filtering by
remote must find all of them. Scheme, parameters and display names go, the host is lowercased
(RFC 3261 §19.1.4: hosts compare case-insensitively, users do not); the port stays, since
two daemons on one host differ only by it.
"""

from __future__ import annotations

from sipd.sip.uri import target_uri


def remote_key(text: str) -> str:
    """`user@host[:port]` of a URI or a name-addr; the text itself, trimmed and lowercased,
    when it is no SIP URI (a tel: number, something a peer made up)."""
    candidate = text.strip()
    if "<" in candidate and ">" in candidate:  # a name-addr: "Bob" <sip:bob@example.com>
        candidate = candidate[candidate.index("<") + 1:candidate.rindex(">")]
    try:
        uri = target_uri(candidate)
    except ValueError:
        return candidate.lower()
    host_port = uri.host_port.lower()
    return f"{uri.user}@{host_port}" if uri.user else host_port
