"""Moved to tests.harness.process; this name stays while test files written before the move
are merged (import from tests.harness.process in new code)."""

from tests.harness.process import ROOT, SipdProcess, host_port, running, write_config

__all__ = ["ROOT", "SipdProcess", "host_port", "running", "write_config"]
