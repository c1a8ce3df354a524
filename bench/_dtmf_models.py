"""Models of how two other frameworks decide that keypad input is complete, on a `Clock`.

These are MODELS, written from the frameworks' parameters and source, not the frameworks
themselves (neither runs without its whole agent/pipeline stack and an LLM). They reproduce only
the completion rule — when the collected keys are handed on — which is what row 4 compares.

LiveKit Agents `GetDtmfTask` (livekit-agents 1.8.9, installed here:
livekit/agents/beta/workflows/dtmf_inputs.py, utils/aio/debounce.py):
  GetDtmfTask(num_digits, dtmf_input_timeout=4.0, dtmf_stop_event=DtmfEvent.POUND)
  - each key except the stop key is appended and re-schedules a debounced reply
    (`Debounced.schedule`: cancel the pending task, `asyncio.sleep(4.0)`, then run);
  - the stop key (`#`) runs the reply at once (`Debounced.run`, a task on the next loop turn);
  - the reply completes the task with the digits if exactly num_digits were collected, else with
    a ToolError — reaching num_digits does NOT complete it early;
  - (not modelled: the debounce is also cancelled while the agent is speaking/thinking or the
    user speaks, and re-armed after; in row 4 the keys come after the prompt, so it never fires.)

Pipecat `DTMFAggregator` (pipecat-ai/pipecat src/pipecat/processors/aggregators/
dtmf_aggregator.py; docs https://docs.pipecat.ai/server/utilities/dtmf-aggregator):
  DTMFAggregator(timeout=2.0, termination_digit=KeypadEntry.POUND, prefix="DTMF: ")
  - every key is appended (the termination digit too) and wakes the aggregation task, which then
    waits `timeout` seconds again (`asyncio.wait_for(event.wait(), timeout)` in a loop);
  - the termination digit flushes at once; otherwise the flush comes `timeout` s after the last
    key; there is no digit count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ivrkit.clock import Clock


@dataclass
class Completion:
    at: float
    value: str
    ok: bool


@dataclass
class GetDtmfTaskModel:
    clock: Clock
    num_digits: int
    dtmf_input_timeout: float = 4.0
    dtmf_stop_event: str = "#"
    inputs: list[str] = field(default_factory=list)
    done: Completion | None = None
    _timer: Any = None

    def press(self, digit: str) -> None:
        if self.done is not None:
            return
        if digit == self.dtmf_stop_event:
            self._cancel()
            self._reply()
            return
        self.inputs.append(digit)
        self._cancel()
        self._timer = self.clock.call_later(self.dtmf_input_timeout, self._reply)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _reply(self) -> None:
        self._timer = None
        ok = len(self.inputs) == self.num_digits
        self.done = Completion(self.clock.now(), "".join(self.inputs), ok)


@dataclass
class DTMFAggregatorModel:
    clock: Clock
    timeout: float = 2.0
    termination_digit: str = "#"
    aggregation: str = ""
    done: Completion | None = None
    _timer: Any = None

    def press(self, digit: str) -> None:
        if self.done is not None:
            return
        self.aggregation += digit
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if digit == self.termination_digit:
            self._flush()
        else:
            self._timer = self.clock.call_later(self.timeout, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if self.aggregation:
            self.done = Completion(self.clock.now(), self.aggregation, True)
