"""Media: the supervisor of the pjsua2 media workers and the control protocol they speak.

The main process imports `supervisor`, `process`, `protocol` and `codecs` only. `worker`,
`engine`, `call_leg` and `retired_players` run inside a worker process; the first three are
the only modules that import pjsua2 (docs/design.md §2). Nothing in the main process may import
them.
"""
