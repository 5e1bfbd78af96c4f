"""The I/O side of file transfer (see sipd/files/__init__.py)."""
