"""The settings of a SipStack (sipd.sip.trio.stack): addresses, ports, transports, TLS, timers and
what the UA accepts (methods, extensions, body types) for `validate_request_for_uas`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..timers import DEFAULT_TIMERS, TimerSettings
from .tls import TlsConfig
from .transport import TRANSPORTS

DEFAULT_METHODS = ("ACK", "BYE", "CANCEL", "INFO", "INVITE", "MESSAGE", "NOTIFY", "OPTIONS",
                   "REFER", "SUBSCRIBE", "UPDATE")
DEFAULT_CONTENT_TYPES = (
    "application/sdp", "text/plain", "message/cpim", "application/im-iscomposing+xml",
    "message/sipfrag", "application/pidf+xml", "application/simple-message-summary",
    "application/watcherinfo+xml", "application/rlmi+xml", "multipart/related",
    "application/xcap-diff+xml",
)

@dataclass(frozen=True)
class StackConfig:
    listen_address: str = "0.0.0.0"
    udp_port: int = 0  # 0: a free port picked at start (see SipStack.ports)
    tcp_port: int = 0
    tls_port: int = 0
    transports: tuple[str, ...] = TRANSPORTS
    max_message_bytes: int = 65535
    tls: TlsConfig = field(default_factory=TlsConfig)
    timers: TimerSettings = DEFAULT_TIMERS
    user_agent: str = "sipd/0.1"
    supported_methods: tuple[str, ...] = DEFAULT_METHODS
    supported_extensions: tuple[str, ...] = ()
    accepted_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES
    idle_timeout: float = 600.0  # close connections without traffic and transactions
    keepalive_interval: float | None = None  # CRLFCRLF pings on our outgoing connections
    connect_timeout: float = 10.0
    max_connections: int = 1000  # TCP/TLS connections peers opened to us, in all
    max_connections_per_address: int = 100  # ... from one address
    message_timeout: float = 30.0  # to complete a message on such a connection
    udp_receive_buffer: int = 2 * 1024 * 1024  # SO_RCVBUF asked for (0: the system's)
