"""Chat over MSRP, sans-I/O: what a chat stream sends and reads, and one conversation's state.

  imdn.py          disposition notifications (RFC 5438): the request headers and the document
  payload.py       bodies of a chat stream: CPIM wrapping by the peer's accept-types,
                   is-composing, notifications; reading them back
  conversation.py  one stream's conversation: our messages and their delivery, what arrives,
                   composing state both ways, notifications owed

The chat stream kind (sessions/streams/) runs a conversation over an MSRP connection.
"""
