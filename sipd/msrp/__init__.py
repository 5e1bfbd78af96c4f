"""MSRP (RFC 4975, 4976, 6135, 8122): a sans-I/O core and, in `trio/`, its I/O side.

Core (no trio, no sockets; tests/msrp/test_core_imports.py keeps it so):
  uri.py        msrp:/msrps: URIs, paths, §6.1 comparison
  headers.py    typed header values (Byte-Range, Status, reports, Expires, digest headers)
  message.py    requests and responses, their serialisation, responses to requests
  parser.py     incremental framing: bytes in any split -> frames or FrameErrors
  incoming.py   reassembly of one incoming message from chunks in any order
  outgoing.py   one outgoing message: chunks, what its chunks heard back
  session.py    MsrpSession: chunking, transactions and timeouts, responses, REPORTs,
                strict checks of input, delivery outcome per message (events.py)
  relay.py      RFC 4976 AUTH client (digest, Use-Path, Expires and its refresh)
  sdp.py        the MSRP attributes of an m-line (path, accept-types, setup, fingerprint...)
Trio side:
  trio/connection.py  a TCP/TLS connection running a session (+ relay refreshes)
  trio/listener.py    the port passive sessions are reached on (msrp.local_port)
  trio/tls.py         our certificate and a=fingerprint; peer certificate checks
  trio/relay.py       finding (configured, SRV), reaching and AUTHing relays
  trio/endpoint.py    MsrpEndpoint / MsrpReservation: what a stream kind uses
"""
