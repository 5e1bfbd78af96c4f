"""History: the calls, messages and file transfers the daemon saw, kept in SQLite.

The core here does no trio: `schema` (versions and migrations), `recorder` (bus events ->
statements), `queries` (RPC filters -> SQL), `remote` (the address a row is filed under) and
`database` (a blocking sqlite3 connection that applies them). `sipd.history.trio` runs the
database in a worker thread: one writer task batching what the event bus publishes, and the
reads RPC methods make.
"""
