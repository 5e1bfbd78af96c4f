"""The I/O side of screen sharing (see sipd/screen/__init__.py)."""
