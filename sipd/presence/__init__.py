"""Presence, sans-I/O: the machines of event notification and publication, and the payloads
they carry. Nothing here does I/O or reads a clock; the trio side drives it.

Machines (inputs are SIP messages and the time; outputs are `actions` and `events`):
- `subscriber.Subscriber`: one subscription (RFC 6665) for any event package: presence,
  presence.winfo, message-summary, dialog; lists with `eventlist` (RFC 4662). `forks` holds
  what it keeps per SUBSCRIBE and per notifier.
- `notifier.Notifier`: one watcher's subscription to us, when sipd is its own presence agent.
- `publisher.Publisher`: one publication (RFC 3903) of presence or dialog state.
- `actions`: what the driver carries out (send a request, answer one, claim or release a
  dialog key in the user agent's dialog table); `events`: what it publishes.
- `timing`, `headers`: refresh and retry timing; lenient reading of the event headers.

Payloads (`payload.PayloadError` for anything unreadable or hostile; builders raise
`payload.InvalidInput` naming the field):
- `pidf` (RFC 3863, 4479, 4480, 4482) read; `view` the `presence.state` view of it;
  `pidf_build` our own document; `rpid` the vocabulary and the short status.
- `winfo` (RFC 3857/3858), `rlmi` and `multipart` (RFC 4662, 2046, 2387),
  `message_summary` (RFC 3842), `dialog_info` (RFC 4235).
- `reader`: a NOTIFY body, per event package, into plain data.
"""
