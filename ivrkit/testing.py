"""Test a flow without a phone, a server or a real second going by.

Shipped in the package (as Starlette ships `testclient.py`) so teams unit-test their own flows:

    async def test_balance() -> None:
        async with FlowTester("flows/acme.yaml", caller=CallerInfo(number="+15550100")) as t:
            t.expect_prompt("For balances press 1")
            await t.press("1")
            await t.press("1234#")
            t.expect_state("balance")
            await t.advance(5)
            t.expect_ended("hangup")

- `VirtualClock` only moves when told; `advance(s)` fires due timers in time order, ties in the
  order they were scheduled — deterministic, so a 5 s timeout costs microseconds.
- `FakeChannel` is the scripted phone: it records what was played (each prompt lasts
  `seconds_per_char` per character of its text on the virtual clock), sent DTMF, transfers,
  dials and hang-ups, and emits `PromptEnded` when playout would have finished.
- `FlowTester` drives one `Call` over both, and after every `press`/`advance` waits until the
  call is idle (no runnable task, no queued event, no hook thread running) — no real sleeps.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from ivrkit.channel import Channel, CallerInfo, Hangup, Key, PromptEnded
from ivrkit.errors import ChannelError
from ivrkit.prompts import RenderedPrompt

# --- the virtual clock ---------------------------------------------------------------------------


class _VTimer:
    __slots__ = ("when", "seq", "callback", "cancelled", "_clock")

    def __init__(self, when: float, seq: int, callback: Callable[[], None], clock: VirtualClock) -> None:
        self.when = when
        self.seq = seq
        self.callback = callback
        self.cancelled = False
        self._clock = clock

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._clock._live -= 1

    def __lt__(self, other: _VTimer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class VirtualClock:
    """A `Clock` whose time moves only in `advance()`. Starts at 0.0."""

    __slots__ = ("_now", "_heap", "_seq", "_live")

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[_VTimer] = []
        self._seq = 0
        self._live = 0

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> _VTimer:
        self._seq += 1
        timer = _VTimer(self._now + max(delay, 0.0), self._seq, callback, self)
        heapq.heappush(self._heap, timer)
        self._live += 1
        return timer

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.call_later(delay, wake)
        try:
            await fut
        finally:
            timer.cancel()

    def pending(self) -> int:
        """Timers scheduled and neither fired nor cancelled (a leak check after a call)."""
        return self._live

    def next_due(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].when if self._heap else None

    def fire_next(self, until: float) -> bool:
        """Fire the earliest timer due at or before `until` (moving time to it). False if none."""
        due = self.next_due()
        if due is None or due > until:
            return False
        timer = heapq.heappop(self._heap)
        self._now = max(self._now, timer.when)
        timer.cancelled = True
        self._live -= 1
        timer.callback()
        return True

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that falls due, in time order (synchronously)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        target = self._now + seconds
        while self.fire_next(target):
            pass
        self._now = target


# --- the scripted phone --------------------------------------------------------------------------


@dataclass(slots=True)
class PlayedPrompt:
    """One prompt as the fake phone played it. `text` is the masked `log_text`."""

    id: int
    state: str
    text: str
    started: float
    duration: float
    barge_in: bool
    ended: float | None = None
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class SentDtmf:
    digit: str
    at: float


class FakeChannel(Channel):
    """The testing adapter. `fail_transfer`/`fail_dial`/`fail_dtmf`: raise `ChannelError`."""

    def __init__(
        self,
        clock: VirtualClock | None = None,
        caller: CallerInfo | None = None,
        *,
        seconds_per_char: float = 0.06,
        audio_seconds: float = 1.0,
        fail_transfer: bool = False,
        fail_dial: bool = False,
        fail_dtmf: bool = False,
    ) -> None:
        self.vclock = clock or VirtualClock()
        super().__init__(clock=self.vclock, caller=caller or CallerInfo())
        self.seconds_per_char = seconds_per_char
        self.audio_seconds = audio_seconds
        self.fail_transfer = fail_transfer
        self.fail_dial = fail_dial
        self.fail_dtmf = fail_dtmf
        self.played: list[PlayedPrompt] = []
        self.sent: list[SentDtmf] = []
        self.transfers: list[str] = []
        self.dials: list[str] = []
        self.hung_up = False
        self.closed = False
        self.caller_gone = False
        self._playing: tuple[PlayedPrompt, Any] | None = None

    def duration(self, prompt: RenderedPrompt) -> float:
        total = len(prompt.text) * self.seconds_per_char
        for part in prompt.parts:
            if part.kind == "silence":
                total += float(part.value)
            elif part.kind == "audio":
                total += self.audio_seconds
        return total

    # --- the port ----------------------------------------------------------------------------

    def play(self, prompt: RenderedPrompt) -> None:
        if self._playing is not None:
            self.stop()  # a well-behaved call never overlaps prompts; be safe anyway
        rec = PlayedPrompt(
            prompt.id, prompt.state, prompt.log_text, self.vclock.now(), self.duration(prompt), prompt.barge_in
        )
        self.played.append(rec)
        timer = self.vclock.call_later(rec.duration, lambda: self._ended(rec, False))
        self._playing = (rec, timer)

    def stop(self) -> None:
        if self._playing is None:
            return
        rec, timer = self._playing
        timer.cancel()
        self._ended(rec, True)

    def _ended(self, rec: PlayedPrompt, interrupted: bool) -> None:
        self._playing = None
        rec.ended = self.vclock.now()
        rec.interrupted = interrupted
        if not self.caller_gone:
            self.emit(PromptEnded(rec.id, interrupted, self.vclock.now()))

    async def send_dtmf(self, digit: str) -> None:
        if self.fail_dtmf:
            raise ChannelError("fake channel: sending DTMF failed (fail_dtmf=True)")
        self.sent.append(SentDtmf(digit, self.vclock.now()))

    async def transfer(self, to: str, *, play_dialtone: bool = False) -> None:
        if self.fail_transfer:
            raise ChannelError(f"fake channel: transfer to {to} failed (fail_transfer=True)")
        self.transfers.append(to)

    async def dial(self, to: str, *, trunk: str | None = None, timeout: float = 30.0) -> None:
        if self.fail_dial:
            raise ChannelError(f"fake channel: dialling {to} failed (fail_dial=True)")
        self.dials.append(to)

    async def hangup(self) -> None:
        self.hung_up = True
        self.stop()

    async def aclose(self) -> None:
        self.closed = True

    # --- the scripted caller -----------------------------------------------------------------

    def press(self, digit: str) -> None:
        """The caller presses one key now (normalised like a real adapter: A-D upper case)."""
        self.emit(Key(digit.upper(), self.vclock.now()))

    def caller_hangs_up(self) -> None:
        if not self.caller_gone:
            self.emit(Hangup(self.vclock.now()))
            self.caller_gone = True

    @property
    def sent_digits(self) -> str:
        return "".join(s.digit for s in self.sent)
