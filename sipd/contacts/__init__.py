"""Contacts, groups and presence policies of each account, on its XCAP server or, without one,
in sipd's own state; the same calls either way (the RPC's contacts.* and presence.authorize)."""
