"""sipd: a headless SIP user agent service."""

__version__ = "0.1.0"
