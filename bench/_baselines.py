"""Hand-written baselines the benchmarks compare ivrkit with, in the same run.

Why baselines: this machine is shared and noisy, so an absolute microsecond figure alone proves
nothing; "ivrkit costs N x what the least anyone could write costs, measured side by side"
does.

- `DictMenuCall`: the floor for per-keypress time — the smallest correct menu/collect handler
  one would write by hand on the same `Channel` port: a dict of states, an asyncio queue and
  one consumer task (the same event plumbing every async IVR needs), barge-in (stop the prompt),
  a no-input timer after the prompt and an inter-digit timer in collects, on the same clock.
  No trace, no masking, no retries, no hooks, no validation: that is what ivrkit adds.
- `bare_call_state()`: the floor for memory per call — one dict per call holding what a call must
  remember (state, digits, variables, retry counters), with no task and no queue.
- `TaskCall`: a dict-per-call plus the asyncio queue and consumer task a live async call needs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ivrkit.channel import Channel, Hangup, Key, PromptEnded
from ivrkit.prompts import FilledPrompt, PromptPart

#: state -> ("menu", prompt, {key: dest}) or ("collect", prompt, (digits, next state))
Table = dict[str, tuple[str, str, Any]]


class DictMenuCall:
    """A minimal hand-written IVR call: the floor for per-key processing time."""

    def __init__(self, table: Table, channel: Channel, start: str) -> None:
        self.table = table
        self.channel = channel
        self.clock = channel.clock
        self.state = start
        self.digits = ""
        self.variables: dict[str, str] = {}
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.prompt_id = 0
        self.playing = False
        self.timer: Any = None
        self.ended = False

    async def run(self) -> None:
        self.channel.connect(self.queue.put_nowait)
        self._enter(self.state)
        while not self.ended:
            event = await self.queue.get()
            kind = type(event)
            if kind is Key:
                self._on_key(event.digit)
            elif kind is PromptEnded:
                if event.id == self.prompt_id:
                    self.playing = False
                    self._arm(5.0)
            elif kind is Hangup:
                self.ended = True
        self._disarm()

    def _enter(self, state: str) -> None:
        self.state = state
        self.digits = ""
        self.prompt_id += 1
        text = self.table[state][1]
        self.channel.play(FilledPrompt(self.prompt_id, (PromptPart("text", text),), text, state))
        self.playing = True

    def _on_key(self, digit: str) -> None:
        if self.playing:
            self.playing = False
            self.channel.stop()
        self._disarm()
        kind, _, spec = self.table[self.state]
        if kind == "menu":
            dest = spec.get(digit)
            if dest is not None:
                self._enter(dest)
            else:
                self._arm(5.0)
            return
        length, dest = spec
        self.digits += digit
        if len(self.digits) >= length:
            self.variables[self.state] = self.digits
            self._enter(dest)
        else:
            self._arm(3.0)

    def _arm(self, delay: float) -> None:
        self._disarm()
        self.timer = self.clock.call_later(delay, lambda: self.queue.put_nowait(Hangup(self.clock.now(), "timeout")))

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def bare_call_state(i: int) -> dict[str, Any]:
    """What any call must remember, as one plain dict: the memory floor."""
    return {"id": i, "state": "main", "digits": "", "variables": {"caller_number": f"+1555{i:07d}"},
            "no_input": 0, "no_match": 0}


class TaskCall:
    """A dict-per-call plus one asyncio queue and one consumer task waiting on it."""

    __slots__ = ("data", "queue", "task")

    def __init__(self, i: int) -> None:
        self.data = bare_call_state(i)
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            self.data["digits"] += str(event)
