"""What goes through a call's queue, and what its handlers answer.

Into the queue: the channel's events (`Key`, `SpeechStarted`, `Speech`, `PromptEnded`, `Hangup`) and the call's own
(`TimerFired`, `CollectorTimer`, `TaskDone`), each posted by one mechanism object, and `Stop`
from outside (`Call.stop`). Out of a
handler: a `Move` to perform next, or None when the call now waits for something. Handlers
return moves instead of performing them so that a chain of states (a `goto` into a `say` into a
menu) runs as a loop in one place, `Call._settle`, not as a recursion through the handlers.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ivrkit.channel import Hangup, Key, PromptEnded, Speech, SpeechStarted
from ivrkit.digits import CollectResult

#: How a call ended (`CallResult.ended_by`).
#: `stopped`: ended from outside by `Call.stop` (the worker is shutting down).
EndedBy = Literal["caller_hangup", "hangup", "transfer", "error", "cancelled", "stopped"]


class Phase(enum.Enum):
    """What the call is waiting for; decides what a key or a prompt's end does."""

    IDLE = "idle"  # nothing started yet
    HOOK = "hook"  # a `run` (or call_start) hook is running
    SAY = "say"  # a state's `say` is playing
    PROMPT = "prompt"  # an input state's prompt (or re-prompt) is playing
    INPUT = "input"  # waiting for the caller's keys
    VALIDATE = "validate"  # a collect's `validate` hook is running
    ACTION = "action"  # transfer / dial / send_dtmf is running
    ANNOUNCE = "announce"  # a transfer's announcement is playing
    SORRY = "sorry"  # the built-in error prompt is playing, then hang up
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The no-input timer of generation `gen` ran out (stale if the timer was re-armed since)."""

    gen: int


@dataclass(frozen=True, slots=True)
class CollectorTimer:
    """A `DigitCollector` timer came due; `fire()` lets the collector decide (it returns the
    `CollectResult` when that ended input, None when the timer was stale)."""

    fire: Callable[[], CollectResult | None]


@dataclass(frozen=True, slots=True)
class TaskDone:
    """The background task of generation `gen` finished with `result` or `error`."""

    gen: int
    result: Any
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class Stop:
    """End the call now, from outside the flow (`Call.stop`), saying why."""

    reason: str


Event = Key | PromptEnded | Hangup | SpeechStarted | Speech | TimerFired | CollectorTimer | TaskDone | Stop


@dataclass(frozen=True, slots=True)
class Move:
    """Go to state `dest`; `why` is traced with the transition ("key 1", "collected", "error")."""

    dest: str
    why: str
