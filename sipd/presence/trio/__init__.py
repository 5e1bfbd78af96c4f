"""Presence, the trio side: the machines of sipd.presence run over the SIP stack.

- `driver`: one machine (Subscriber, Notifier, Publisher) on the stack: its requests in client
  transactions (located, with failover and digest), its dialogs in the user agent's dialog
  table, its timers; any event package (presence, winfo, message-summary, dialog, xcap-diff).
- `service`: the daemon's presence: per account the publication, the subscriptions, the
  watchers when sipd is its own presence agent; what the RPC methods call.
- `agent`: sipd as the presence agent of its accounts (their watchers, authorisation).
- `subscriptions`: one subscription and what its NOTIFYs become (events).
- `addresses`: our From and Contact toward a peer; `errors`: what the calls refuse.
"""
