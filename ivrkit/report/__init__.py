"""`ivrkit report`: where callers give up, read from the worker's per-call trace files.

An engine tool like `replay/` and `coverage/`: it reads traces and flows, never LiveKit.

- `aggregate`  one pass over the files: each call read into a `Recording` (`ivrkit.replay`),
               folded into its flow's counters (`FlowFigures`) and dropped; graph edges counted
               with `ivrkit.coverage.taken` when the flow is given
- `text`       the figures as plain text, one block per flow
- `html`       one self-contained page; the flow drawn by `ivrkit.graph` with arrows by traffic
- `cli`        the `ivrkit report` command
"""
