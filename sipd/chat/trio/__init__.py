"""The trio side of chat: a conversation run over one MSRP connection (channel.py)."""
