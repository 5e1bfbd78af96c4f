"""The web page's server: clients/web over HTTP(S), its RPC WebSocket, one-time login codes.

Served by hypercorn on trio (sipd/web/server.py) from an ASGI app (app.py); the RPC itself is
the front door's (sipd/rpc), handed in by the daemon, so this package never imports it.
"""
