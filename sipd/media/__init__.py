"""Media: the supervisor of the pjsua2 media workers and the control protocol they speak.

The main process imports `supervisor`, `process`, `protocol` and `codecs` only. `worker`,
`engine` and `call_leg` run inside a worker process and are the only modules that import
pjsua2 (DESIGN.md §2); nothing in the main process may import them.
"""
