"""`ivrkit report`: where callers give up, read from the worker's per-call trace files."""
