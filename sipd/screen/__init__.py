"""Screen sharing: RFB (VNC) carried over MSRP as python-sipsimple and Blink carry it. A
sans-I/O core and, in `trio/`, the bridge between an MSRP connection and a TCP stream. The
stream kind sits on these in sipd/sessions/streams/.

Core (no trio, no sockets):
  sdp.py        a=rfbsetup (who is the RFB server), the roles, the m-line's accept-types
Trio side:
  trio/bridge.py  RFB bytes between an MsrpConnection and a TCP stream (a local VNC server
                  when sharing; a viewer on a loopback port when viewing)
"""
