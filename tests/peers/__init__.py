"""Drivers for the real peers the interop tests run on loopback.

kamailio (registrar/proxy, template kamailio.cfg.in), baresip and linphonec (user agents),
sipp (scenarios/), dnsmasq (DNS), coturn (STUN/TURN); proc.py starts and stops processes,
ports.py picks free ports, certs.py makes a test CA; fixtures.py has the pytest fixtures.
"""
