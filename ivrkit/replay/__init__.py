"""Replay a recorded call against a flow, on the virtual clock, and say where it diverges.

`ivrkit replay TRACE.jsonl FLOW` and `FlowTester.replay(trace, flow, **secrets)` (a real call as
a regression test) both come here:

    recording.py  a trace file of either format (console/FlowTester, worker) → one `Recording`
    keys.py       the caller's keys, masked ones filled from what the user gives (never unmasked)
    timing.py     when each key goes in (tied to what the caller heard), how long prompts play
    plan.py       the inputs, starting variables and notes of one replay
    far_end.py    a dialled party's audio, rebuilt from the trace's amd record (same outcome, same time)
    drive.py      gives the inputs to a `FlowTester` at their moments
    compare.py    the steps of both calls, the first divergence, the report

The replay runs the flow for real — its hooks too (the flow's `python_path`), so what a hook
answers now may differ from what it answered on the recorded call; the report says so when it
does. This package never imports `ivrkit.testing`: `FlowTester.replay` drives it.
"""

from ivrkit.replay.compare import Divergence, ReplayResult, Step, compare
from ivrkit.replay.drive import HORIZON, feed
from ivrkit.replay.keys import PLACEHOLDER
from ivrkit.replay.plan import Plan, plan
from ivrkit.replay.recording import Rec, Recording, Source, read_recording

__all__ = ["HORIZON", "PLACEHOLDER", "Divergence", "Plan", "Rec", "Recording", "ReplayResult", "Source", "Step",
           "compare", "feed", "plan", "read_recording"]
