"""Child process of test_crash.py: changes settings as fast as it can until it is killed.

Argument: the settings file. Prints "ready" once the store is open, so the parent kills it
while it writes and not while Python starts."""

import itertools
import sys
from pathlib import Path

from sipd.settings.store import SettingsStore

store = SettingsStore.open(Path(sys.argv[1]))
start = store.get("rpc.event_replay")
print("ready", flush=True)
for step in itertools.count(start + 1):
    # Several kinds of change, so a kill can land in the middle of any of them.
    store.set("rpc.event_replay", step % 100_000)
    store.set("nat.stun_servers", [f"stun{step}.example.com:3478"])
    store.set_section("accounts", f"a{step % 3}", {"uri": f"sip:u{step}@example.com",
                                                   "auth": {"password": "x" * (step % 50)}})
    if step % 7 == 0:
        store.reset("nat.stun_servers")
