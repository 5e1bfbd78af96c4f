"""The trio side of MSRP: TCP and TLS connections that run the sans-I/O session, the listener,
the TLS identity bound to a=fingerprint, and the RFC 4976 relay client."""
