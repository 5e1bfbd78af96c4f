"""Errors of the file transfer core."""

from __future__ import annotations


class FileAttributeError(ValueError):
    """An RFC 5547 attribute that cannot be read; the message names the attribute and what was
    wrong with it (for the log and the 488 Warning an offer gets)."""
