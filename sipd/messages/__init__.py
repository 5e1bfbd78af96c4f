"""Payloads of pager-mode messaging (SIP MESSAGE, RFC 3428), sans-I/O: Message/CPIM envelopes
(`cpim`), is-composing indications and their timers (`iscomposing`), and what a received body
means or an outgoing one looks like (`content`). `xml` holds the safe XML parser every payload
module uses."""
