"""What tests share, in one place (no tests here; test modules import from here, never from
one another).

- process: `SipdProcess`, a real sipd started and always stopped; `running` for several.
- events: `EventLog`, every RPC event of a connection, with `wait(name, predicate)`, `take`,
  `wait_until(predicate)` and `next(name)`.
- peer: `DaemonPeer` (RPC client, event log, SIP ports, account), `open_peer`,
  `registered_user`, `daemon_settings`, `call_and_answer`.
- fixtures: the daemon fixtures (`daemons`, `a`, `b`, `c`, `daemon`, `peer`, `pair`).
- waits: `wait_until` (blocking), `eventually` (trio), `off_loop`; bounds, never speed checks.
- useragent: `UserAgentPeer`, the base of the baresip and linphonec drivers (tests/peers/).
- audio, interop: tones played and heard; call steps with baresip and linphonec.
- chat: a chat session opened and answered, a conversation, the hang-up.
- raw_uac, sipp, sipctl, registration, sip_stack: a raw SIP UAC, sipp trace reading, the
  sipctl command line, registration events per account, in-process SIP stacks.
"""
