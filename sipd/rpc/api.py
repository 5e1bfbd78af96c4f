"""The one method table of the daemon; sipd.rpc.methods fills it on import."""

from .registry import Registry

registry = Registry()
method = registry.method
