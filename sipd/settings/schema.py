"""The settings schema: every global key, its type, default, bounds and help text.

Keys follow docs/design.md §3. A key's TOML table is everything before its last dot
(`nat.turn.server` lives in `[nat.turn]` as `server`). `render_example()` turns the schema into
the annotated example configuration; config/sipd.toml is its output, regenerated with
`python -m sipd.settings.schema > config/sipd.toml`.
"""

from __future__ import annotations

import difflib
import json
import textwrap
from typing import Any

import tomlkit

from sipd.settings import addresses
from sipd.settings.errors import SettingError
from sipd.settings.kinds import (
    BoolSetting,
    EnumSetting,
    IntSetting,
    ListenAddressSetting,
    ListSetting,
    PathSetting,
    PortRangeSetting,
    PortSetting,
    Setting,
    StrSetting,
    check_codec_name,
    check_host_port,
    check_ip_address,
    check_origin,
)

__all__ = ["SETTINGS", "SettingError", "Setting", "lookup", "render_example", "describe",
           "TABLES", "RAW_SECTIONS", "close_keys"]

def check_nameserver(text: str) -> None:
    """A resolver is reached by address: a name would need a resolver to find it."""
    host, _port = addresses.parse_host_port(text)
    if not addresses.is_ip_address(host):
        raise ValueError(f"{host!r} is not an IP address")


SETTINGS: tuple[Setting, ...] = (
    # [sip]
    PortSetting("sip.local_udp_port", 0, "Local port for SIP over UDP."),
    PortSetting("sip.local_tcp_port", 0, "Local port for SIP over TCP."),
    PortSetting("sip.local_tls_port", 0, "Local port for SIP over TLS."),
    ListSetting("sip.transport_list", ["udp", "tcp", "tls"],
                "SIP transports to listen on and use, in order of preference.",
                choices=("udp", "tcp", "tls"), non_empty=True),
    IntSetting("sip.t1", 500,
               "SIP timer T1 in milliseconds: the round-trip estimate retransmissions and "
               "transaction timeouts (64*T1) are measured in (RFC 3261 §17).",
               minimum=10, maximum=10000),
    StrSetting("sip.listen_address", "0.0.0.0",
               "The address SIP sockets bind to: 0.0.0.0 for every IPv4 address, :: for every "
               "IPv6 (and, on most systems, IPv4) address.",
               form="an IP address such as 0.0.0.0, :: or 192.0.2.10",
               check=check_ip_address, allow_empty=False),
    IntSetting("sip.max_message_bytes", 65535,
               "Largest SIP message accepted, in bytes; bigger ones are refused.",
               minimum=1024, maximum=1048576),
    IntSetting("sip.max_connections", 1000,
               "Most SIP TCP and TLS connections peers may have open to us, in all. When full, "
               "a new one replaces the oldest that has not yet sent a complete message, or is "
               "closed at once.",
               minimum=1, maximum=100000),
    IntSetting("sip.max_connections_per_address", 100,
               "Most SIP TCP and TLS connections one peer address may have open to us; more "
               "are closed at once.",
               minimum=1, maximum=100000),
    IntSetting("sip.message_timeout", 30,
               "Seconds a peer's SIP TCP or TLS connection may go without completing a "
               "message: a new connection that sends no complete message in this time, or a "
               "message begun and not finished in it, is closed (idle connections that did "
               "send one stay open for 600 s).",
               minimum=1, maximum=600),
    IntSetting("sip.udp_receive_buffer", 2 * 1024 * 1024,
               "Receive buffer asked for the SIP UDP socket, in bytes, so that a burst is not "
               "lost while the daemon is busy; the system may grant less (net.core.rmem_max). "
               "system.state shows what was granted and the datagrams dropped.",
               minimum=65536, maximum=256 * 1024 * 1024),
    IntSetting("sip.session_expires", 1800,
               "Session interval of calls, in seconds (RFC 4028 session timers): asked for in "
               "our INVITEs and granted to callers; a call whose refresher lets it lapse is "
               "ended (failed, \"session timer expired\"). 0: no session timers of ours (a "
               "caller asking for them still gets them).",
               minimum=0, maximum=86400),
    IntSetting("sip.min_se", 90,
               "Shortest session interval we accept, in seconds (RFC 4028 Min-SE): a shorter "
               "one asked of us gets 422 Session Interval Too Small. RFC 4028 asks for at "
               "least 90; less is for tests.",
               minimum=2, maximum=86400),
    # [tls]
    PathSetting("tls.ca_list", "",
                "PEM file of the certificate authorities trusted for TLS peers. Empty: the "
                "system CA store."),
    PathSetting("tls.certificate", "",
                "PEM file with our certificate and its private key, presented to TLS peers. "
                "Empty: no certificate (fine for a client)."),
    BoolSetting("tls.verify_server", True,
                "Check the certificate of servers we connect to over TLS."),
    BoolSetting("tls.verify_client", False,
                "Ask TLS clients connecting to us for a certificate and check it."),
    # [rtp]
    PortRangeSetting("rtp.port_range", "50000-50500",
                     "Local ports for RTP/RTCP: each audio stream takes an even port for RTP and "
                     "the odd one above it for RTCP, so start the range on an even port."),
    StrSetting("rtp.media_address", "",
               "The address RTP binds to and advertises in SDP. Empty: the local address that "
               "routes to the peer.",
               form='an IP address, or "" for the address that routes to the peer',
               check=check_ip_address),
    ListSetting("rtp.audio_codecs", ["G722", "PCMU", "PCMA"],
                "Audio codecs offered and accepted, in order of preference.",
                item_form="codec names such as opus, G722, PCMU, PCMA, speex/16000",
                item_check=check_codec_name, non_empty=True),
    EnumSetting("rtp.srtp", "optional",
                "SRTP (SDES) for audio: disabled, optional (offer it, accept plain RTP) or "
                "mandatory (refuse plain RTP).",
                choices=("disabled", "optional", "mandatory")),
    IntSetting("rtp.inactivity_timeout", 30,
               "Seconds a call may receive no RTP from the remote party before it is ended "
               "(failed, \"no media from the remote party\"): a far end that died sends no "
               "BYE. Calls on hold are not watched. 0: never.",
               minimum=0, maximum=3600),
    # [dns]
    ListSetting("dns.nameservers", [],
                "DNS servers for locating SIP servers (RFC 3263: NAPTR, SRV, A/AAAA). Empty: "
                "the system's resolver configuration.",
                item_form='IP addresses "address[:port]" (port 53 when omitted)',
                item_check=check_nameserver),
    # [nat]
    ListSetting("nat.stun_servers", [],
                "STUN servers used to learn our public address, tried in order.",
                item_form='"host[:port]" entries (port 3478 when omitted)',
                item_check=check_host_port),
    BoolSetting("nat.ice", False, "Use ICE to find a working media path through NATs."),
    StrSetting("nat.turn.server", "",
               "TURN server relaying media when no direct path works. Empty: no TURN.",
               form='"host[:port]", or "" for no TURN server', check=check_host_port),
    StrSetting("nat.turn.username", "", "User name for the TURN server."),
    StrSetting("nat.turn.password", "", "Password for the TURN server.", secret=True),
    # [msrp]
    PortSetting("msrp.local_port", 0,
                "Local port for MSRP (chat, file transfer, screen sharing)."),
    EnumSetting("msrp.transport", "tls", "Transport for MSRP connections.",
                choices=("tls", "tcp")),
    StrSetting("msrp.relay", "",
               "MSRP relays (RFC 4976) sessions go through, tried in order; auto finds them "
               "by DNS SRV (_msrps._tcp of the account's domain). Empty: connect directly.",
               form='msrps: URIs such as msrps://relay.example.com:2855;tcp, "auto", or "" '
                    'for none',
               check=addresses.check_msrp_relay_uri),
    StrSetting("msrp.relay_username", "",
               "User name for AUTH at the MSRP relay. Empty: the account's SIP user name."),
    StrSetting("msrp.relay_password", "",
               "Password for AUTH at the MSRP relay. Empty: the account's SIP password.",
               secret=True),
    PathSetting("msrp.certificate", "",
                "PEM file with the certificate (and its private key) MSRP over TLS presents; its "
                "fingerprint goes in our SDP (a=fingerprint). Empty: one the daemon makes on "
                "first start in its state directory."),
    IntSetting("msrp.max_message_size", 16 * 1024 * 1024,
               "Largest chat message accepted, in bytes (file transfers are written to disk "
               "and not bound by this).",
               minimum=1024, maximum=1024 * 1024 * 1024),
    IntSetting("msrp.chunk_size", 2048,
               "Size in bytes of the chunks our MSRP messages are cut into when a relay is on "
               "the path (Kamailio's relay takes frames under 10 KB only).",
               minimum=256, maximum=1024 * 1024),
    IntSetting("msrp.direct_chunk_size", 256 * 1024,
               "Size in bytes of the chunks our MSRP messages are cut into on a direct "
               "connection to the peer (bigger chunks: less work per byte; lower it for a "
               "peer that takes smaller chunks only).",
               minimum=256, maximum=1024 * 1024),
    # [files]
    PathSetting("files.download_dir", "",
                "Folder received files are saved in, named as the sender named them (made "
                "safe, never overwriting: \"name (1).ext\") and carrying .part until complete "
                "and verified. Empty: the user's Downloads folder for a daemon run by a user, "
                "<state-dir>/downloads for a system service (docs/decisions.md, Files)."),
    PathSetting("files.share_dir", "",
                "Folder whose files peers may fetch (an incoming RFC 5547 pull is answered "
                "with the file here its selector matches: name, size, type, hash). Empty: "
                "pulls are refused."),
    # [presence]
    BoolSetting("presence.allow_everyone", False,
                "Let anyone who subscribes see the presence of accounts sipd serves itself "
                "(direct accounts); otherwise a new watcher waits for presence.authorize."),
    IntSetting("presence.subscribe_expires", 3600,
               "Lifetime of presence subscriptions, in seconds: asked for ours, granted at "
               "most to our watchers.",
               minimum=60, maximum=86400),
    BoolSetting("presence.publish_dialogs", False,
                "Publish the state of the accounts' calls (RFC 4235 dialog event: busy lamps) "
                "at their servers, and let authorized watchers subscribe to it here."),
    IntSetting("presence.max_watchers", 1000,
               "Most subscriptions to one account's state that sipd holds at once (as its "
               "presence agent); more get 503.",
               minimum=1, maximum=100000),
    IntSetting("presence.publish_expires", 3600,
               "Lifetime of our presence publications at the server, in seconds.",
               minimum=60, maximum=86400),
    # [xcap]
    PortSetting("xcap.local_port", 0,
                "Local TCP port outgoing XCAP connections leave from, one connection per "
                "server at a time (for firewalls that allow a known source port). 0: any."),
    StrSetting("xcap.root", "",
               "Default XCAP root URL for accounts that do not set one. Empty: none.",
               form='an http:// or https:// URL, or "" for none',
               check=addresses.check_http_url),
    IntSetting("xcap.timeout", 10,
               "Seconds an XCAP request may take (connecting, sending, each read) before it "
               "counts as failed.",
               minimum=1, maximum=300),
    IntSetting("xcap.retries", 3,
               "Times a failed XCAP request (no connection, timeout, 5xx) is tried again, with "
               "a doubling pause, before the server counts as unavailable and edits wait in "
               "the journal.",
               minimum=0, maximum=10),
    # [rpc]
    ListenAddressSetting("rpc.listen", "127.0.0.1:7575",
                         "Where the JSON-RPC WebSocket listens. Keep it on a loopback address "
                         "unless clients on other hosts must connect."),
    ListSetting("rpc.allowed_origins", [],
                "Browser origins allowed to connect (the WebSocket handshake's Origin header). "
                "Clients that send no Origin, like sipctl, are not affected.",
                item_form='origins "scheme://host[:port]" such as http://localhost:8080',
                item_check=check_origin),
    IntSetting("rpc.max_message_bytes", 1048576,
               "Largest JSON-RPC message accepted from a client, in bytes.",
               minimum=1024, maximum=67108864),
    IntSetting("rpc.max_batch", 100,
               "Most requests in one JSON-RPC batch; a longer batch is refused whole (-32600).",
               minimum=1, maximum=10000),
    IntSetting("rpc.event_replay", 1000,
               "Events kept for clients that reconnect and ask for what they missed "
               "(events.subscribe with since).",
               minimum=0, maximum=100000),
    IntSetting("rpc.event_replay_bytes", 16 * 1024 * 1024,
               "Memory the events kept for replay may take, in bytes; the oldest go first "
               "when this or rpc.event_replay is exceeded.",
               minimum=65536, maximum=1024 * 1024 * 1024),
    IntSetting("rpc.client_queue", 1000,
               "Events queued for one client before it is warned, then dropped as too slow. "
               "Replayed events do not count: a client that resumes reads them from the replay "
               "buffer at its own pace.",
               minimum=10, maximum=100000),
    IntSetting("rpc.client_queue_bytes", 4 * 1024 * 1024,
               "Memory the events queued for one client may take, in bytes, before it is "
               "warned, then dropped as too slow (whichever of this and rpc.client_queue comes "
               "first).",
               minimum=65536, maximum=1024 * 1024 * 1024),
    # [sessions]
    IntSetting("sessions.no_answer_timeout", 120,
               "Seconds a call may ring unanswered: an incoming one is then refused (480, "
               "failed with \"no answer\"; sooner when the caller's INVITE expires), an "
               "outgoing one cancelled. 0: ring until someone answers or hangs up.",
               minimum=0, maximum=86400),
    IntSetting("sessions.max_incoming", 100,
               "Most incoming calls (ringing or established) at once, in all; more are "
               "refused with 503 and Retry-After.",
               minimum=1, maximum=100000),
    IntSetting("sessions.max_incoming_per_account", 30,
               "Most incoming calls (ringing or established) one account has at once; more "
               "are refused with 486 Busy Here.",
               minimum=1, maximum=100000),
    # [web]
    ListenAddressSetting("web.listen", "127.0.0.1:8089",
                         "Where the web page (clients/web) and its RPC WebSocket (/rpc) are "
                         "served. \"\" turns the web page off. Another machine can reach it "
                         "only over HTTPS (set web.certificate): a browser gives no microphone "
                         "to a page that is neither loopback nor HTTPS.",
                         allow_empty=True),
    PathSetting("web.certificate", "",
                "PEM file with the web page's certificate (chain), and its private key unless "
                "web.private_key names another file. Set: the page is served over HTTPS and "
                "its RPC over WSS. Empty: plain HTTP."),
    PathSetting("web.private_key", "",
                "PEM file with the private key of web.certificate. Empty: the key is in "
                "web.certificate's file."),
    IntSetting("web.max_upload_bytes", 512 * 1024 * 1024,
               "Largest file the web page may upload to send (POST /uploads), in bytes; a "
               "larger one is refused with 413 and nothing of it is kept.",
               minimum=1, maximum=1024 ** 4),
    IntSetting("web.upload_keep", 3600,
               "Seconds an uploaded file nobody sent is kept (in <state-dir>/uploads); one "
               "that is sent goes when its session ends.",
               minimum=60, maximum=7 * 86400),
    # [media]
    IntSetting("media.max_workers", 4,
               "Most media worker processes started on demand (each carries up to 4 calls).",
               minimum=1, maximum=64),
    IntSetting("media.heartbeat_interval", 2,
               "Seconds between the checks that each media worker still answers; one that "
               "misses a check is reported (media.worker event, state unresponsive) and its "
               "calls show their last known media state.",
               minimum=1, maximum=60),
    IntSetting("media.unresponsive_grace", 10,
               "Seconds a media worker may stay unresponsive before it is killed and its "
               "calls are ended with the reason.",
               minimum=1, maximum=600),
    BoolSetting("media.zygote", True,
                "Fork media workers from one process that has imported pjsua2 (its imported "
                "memory is then shared by all workers) instead of starting each as a fresh "
                "interpreter. Read when the media engine starts."),
    # [history]
    IntSetting("history.keep_days", 0,
               "Days the history (calls, messages, file transfers) keeps a record; older ones "
               "are deleted at start, hourly and when this changes. 0: keep forever.",
               minimum=0, maximum=36500),
    # [log]
    EnumSetting("log.level", "info", "Least severe log messages written.",
                choices=("debug", "info", "warning", "error")),
)

BY_KEY: dict[str, Setting] = {setting.key: setting for setting in SETTINGS}

# Tables in schema order, e.g. ("sip", "tls", ..., "nat", "nat.turn", ...).
TABLES: tuple[str, ...] = tuple(dict.fromkeys(setting.table for setting in SETTINGS))

# Every dotted prefix that names a table ("nat" and "nat.turn"): such keys must hold tables.
TABLE_PREFIXES: frozenset[str] = frozenset(
    ".".join(table.split(".")[:depth])
    for table in TABLES for depth in range(1, table.count(".") + 2))

# Top-level tables the store keeps as raw data for other schemas ([accounts.<id>]).
RAW_SECTIONS: tuple[str, ...] = ("accounts",)


def close_keys(key: str, n: int = 3) -> list[str]:
    return difflib.get_close_matches(key, BY_KEY, n=n, cutoff=0.6)


def lookup(key: str) -> Setting:
    """The setting called `key`, or SettingError listing the closest known keys."""
    try:
        return BY_KEY[key]
    except (KeyError, TypeError):
        pass
    close = close_keys(key) if isinstance(key, str) else []
    if close:
        hint = "did you mean " + " or ".join(close) + "?"
    else:
        hint = "settings.schema lists the known keys"
    raise SettingError(str(key), f"unknown setting {json.dumps(key)}: {hint}")


def describe() -> list[dict[str, Any]]:
    """Every setting, JSON-ready, for settings.schema."""
    return [setting.describe() for setting in SETTINGS]


_WIDTH = 90

_HEADER_TEXT = (
    "This file is both the annotated example and a valid configuration holding the "
    "defaults: change a value in place. sipd rewrites the file when settings change through "
    "RPC (settings.set); it keeps your comments and the order of keys, and keeps the file "
    "private (mode 0600) because it can hold passwords. Send SIGHUP to make sipd re-read "
    "it.")
_REGENERATE = "Regenerate the pristine example with: python -m sipd.settings.schema > sipd.toml"
_FOOTER_TEXT = (
    "Accounts are [accounts.<id>] tables below this line; sipd writes them (accounts.add, "
    "accounts.update), and they may be edited here as well.")


def _lines(text: str) -> list[str]:
    """`text` as "# " comment lines of at most _WIDTH columns."""
    wrapped = textwrap.wrap(text, width=_WIDTH, initial_indent="# ", subsequent_indent="# ",
                            break_long_words=False, break_on_hyphens=False)
    return [line + "\n" for line in wrapped]


def render_example() -> str:
    """The annotated example configuration, holding every default."""
    out = ["# sipd configuration.\n", "#\n", *_lines(_HEADER_TEXT), *_lines(_REGENERATE)]
    for table in TABLES:
        out.append(f"\n[{table}]\n")
        members = [s for s in SETTINGS if s.table == table]
        for index, setting in enumerate(members):
            if index:
                out.append("\n")
            out.extend(_lines(setting.help))
            out.extend(_lines(f"Allowed: {setting.allowed()}."))
            value = tomlkit.item(setting.default).as_string()
            out.append(f"{setting.name} = {value}\n")
    out.append("\n")
    out.extend(_lines(_FOOTER_TEXT))
    return "".join(out)


if __name__ == "__main__":
    import sys

    sys.stdout.write(render_example())
