"""The caller's keys: type-ahead, menu / collect / confirm input, retries, back and repeat.

Keypad decisions (how a serious IVR behaves):
- *Type-ahead*: keys pressed while a prompt plays, a hook runs or a `say` speaks are kept in
  order in the buffer and consumed by the next input state. If keys are already buffered when
  an input state starts and barge-in is on, its prompt is skipped (traced `prompt_skip`).
- *Barge-in* (decided by the call, which knows what is playing): a key stops an interruptible
  prompt at once and is used. With `barge_in: false` (legal text) the prompt plays to its end;
  keys wait in the buffer.
- *Menu*: an option moves on; the repeat key replays the menu prompt (not a retry); the back key
  returns to the previous menu/collect state (no previous: a no-match); any other key is a
  no-match. The no-input timer (`timeout`) starts when the prompt ends.
- *Collect*: see `ivrkit.digits`. Too few digits, a pattern mismatch (no `pattern`: anything
  but 0-9, see `DIGITS_ONLY`) or a `validate` hook saying False is a no-match; nothing typed
  before a timeout is a no-input; a bare terminator is a no-match, or with `min_digits: 0` an
  empty entry (how a caller skips an optional one). `<into>_reason` holds the end reason. With
  `confirm`, the confirm prompt plays; 1 accepts, 2 re-enters the state, anything else or
  silence counts as a no-match / no-input of the same state.
- no-input and no-match are counted separately per visit of a state; the n-th one plays the
  n-th (or last) of its escalating prompts, then the state's prompt again. The `retries`-th one
  leaves for `on_max_retries` (none: the error path). Keys still buffered at a no-input or
  no-match are discarded (and traced as such): the caller is being re-prompted.
- *Habitual terminator*: after a collect completes at `max_digits`, a terminator pressed within
  `inter_digit_timeout` of its last digit ("1234#" for a four-digit PIN) ends that entry, not
  the next state's: it is discarded with that reason instead of being a no-match in the next
  menu — unless that menu takes the key as an option (or its repeat / back key). It is the first
  key after the entry: one pressed later, or one already typed ahead behind the last digit (keys
  held through a `barge_in: false` prompt or a hook). A held one is discarded when the next
  input state starts (or the entry is re-prompted), before type-ahead may skip that state's
  prompt: a leftover `#` never silences the next menu.
- *Speech* (`input: [dtmf, speech]`, see `ivrkit.call.speech`): `said` gives the words the
  meaning a key would have — a menu option by its `say:` words (the same move, traced `said
  1`), an entry's digits (ending it, reason `speech`), yes / no at a confirm step — and shares
  the retry counters: words that mean nothing are a no-match.
- `max_attempts` counts no-input and no-match together; the state is left when it or either
  one's `retries` is reached.
- Every key ends up in exactly one trace record, `consumed` or `discarded` with a reason, in the
  order pressed. Keys consumed by a sensitive collect are traced and logged as `*`.

`Keys` owns the buffer, the digit collector, the retry counters, the confirm step, the history
for the back key and the sensitive-input flag. It answers with a decision (`Move`, `Fail`,
`End`, `Reprompt`, `Validate`) that the call carries out; it never plays, moves or waits itself.
"""

from __future__ import annotations

import enum
import logging
import re
from collections import deque
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

from ivrkit.call.events import EndedBy, Move
from ivrkit.call.recorder import Recorder
from ivrkit.channel import DTMF_KEYS, Key
from ivrkit.clock import Clock
from ivrkit.digits import CollectResult, DigitCollector, EndReason, KeyOutcome, Schedule
from ivrkit.errors import CallError, HookError
from ivrkit.flow.model import Collect, HookRef, Menu, State
from ivrkit.prompts import Prompt, fill
from ivrkit.spoken import choose, digits_of, yes_no

log = logging.getLogger("ivrkit.call")

STRAY = "terminator after an entry already complete (max_digits)"
#: What a collect without `pattern` accepts: digits. `*` and A-D (keys that are not the
#: terminator, clear or back key) are collected as typed, but they are no digits of an account
#: number or a PIN: an entry holding one is a no-match unless the flow's `pattern` allows it.
DIGITS_ONLY = "[0-9]*"
_DIGITS_ONLY = re.compile(DIGITS_ONLY)


@dataclass(frozen=True, slots=True)
class Fail:
    """Take the error path with `error`."""

    error: Exception


@dataclass(frozen=True, slots=True)
class End:
    """End the call (a collect with `hangup: true` and no `next`)."""

    how: EndedBy


@dataclass(frozen=True, slots=True)
class Reprompt:
    """Play the state's input prompts again, `first` before them (an escalating retry prompt);
    also how a confirm step starts."""

    first: Prompt | None = None


@dataclass(frozen=True, slots=True)
class Validate:
    """Run the collect's `validate` hook on `digits`, then `validated()`."""

    ref: HookRef
    digits: str


Decision = Move | Fail | End | Reprompt | Validate | None


class Arrival(enum.Enum):
    """What became of a key as it arrived."""

    USE = "use"  # the call waits for input and nothing is buffered: use it now (`press`)
    TYPED_AHEAD = "typed_ahead"  # buffered for the next input state
    DROPPED = "dropped"  # discarded (and traced) at once


#: Returned on every key: module constants, as `Arrival.X` costs an `EnumType.__getattr__` hook on
#: CPython 3.11 (see `ivrkit.call.runtime`).
_USE, _TYPED_AHEAD = Arrival.USE, Arrival.TYPED_AHEAD


class Keys:
    """The keypad policy of one call (see the module docstring)."""

    __slots__ = ("_recorder", "_variables", "_sensitive", "_clock", "_schedule", "state", "buffer",
                 "collector", "confirming", "prompts", "no_input", "no_match", "history", "secret", "_stray",
                 "_last_digit", "sensitive_now")

    def __init__(self, recorder: Recorder, variables: MutableMapping[str, Any], sensitive: frozenset[str],
                 clock: Clock, schedule: Schedule) -> None:
        self._recorder = recorder
        self._variables = variables  # the call's: entries land here (into, <into>_reason, last_key)
        self._sensitive = sensitive  # names of variables that hold sensitive input
        self._clock = clock
        self._schedule = schedule
        self.state: State | None = None
        self.buffer: deque[Key] = deque()
        self.collector: DigitCollector | None = None
        self.confirming = False
        self.prompts: list[Prompt] = []
        self.no_input = 0
        self.no_match = 0
        self.history: deque[str] = deque(maxlen=16)  # the last input states visited, for the back key
        self.secret = ""  # sensitive digits being validated: masked in every message
        # (terminator, until): a collect completed at max_digits; the caller may still press
        # the terminator out of habit — that key belongs to the finished entry, not the next state
        self._stray: tuple[str, float] | None = None
        self._last_digit = 0.0  # when the key that completed an entry was pressed
        #: the state takes sensitive input (a sensitive collect): its keys are masked
        self.sensitive_now = False

    # --- the state's visit ---------------------------------------------------------------------

    def enter(self, state: State) -> None:
        """A state was entered: counters start again."""
        self.state = state
        self.sensitive_now = state.collect is not None and state.collect.sensitive
        self.no_input = self.no_match = 0

    def visit(self, state: State) -> None:
        """An input state starts taking keys: remember it for the back key."""
        history = self.history
        if not history or history[-1] != state.name:
            history.append(state.name)

    def leave(self) -> None:
        """The call leaves the state: an entry in progress is cancelled, the visit forgotten."""
        if self.collector is not None:
            self.end_entry(EndReason.CANCELLED)
        self.prompts = []
        self.confirming = False
        self.secret = ""

    def end_entry(self, reason: EndReason) -> None:
        """An entry in progress ends with `reason` (recorded): the state is left, or the call ends."""
        if self.collector is not None:
            if not self.collector.done:
                self._record_collect(self.collector.cancel(reason))
            self.collector = None

    # --- arrivals and type-ahead ---------------------------------------------------------------

    def arrive(self, key: Key, waiting: bool) -> Arrival:
        """A key arrived; `waiting`: the call is in its input phase."""
        # a stray terminator is dropped before barge-in: it must not cut a prompt
        if self._stray is not None and not self.buffer and self._is_stray(key):
            self.discard(key, STRAY)
            return Arrival.DROPPED
        if waiting and not self.buffer:
            return _USE
        if key.digit not in DTMF_KEYS and not self.buffer:
            self.discard(key, self._not_dtmf(key))
            return Arrival.DROPPED
        self.buffer.append(key)  # behind earlier keys: records stay in the order pressed
        return _TYPED_AHEAD

    def typed_ahead(self) -> Key | None:
        """The oldest buffered key, taken out of the buffer."""
        return self.buffer.popleft() if self.buffer else None

    def discard(self, key: Key, reason: str, pending: bool = False) -> None:
        """Trace a key no state used. `pending`: it was typed ahead and never reached a state,
        so it may have been meant for a sensitive collect later on — masked in any flow that
        has one (a caller typing "1 4321" and hanging up must not leave a PIN in the trace)."""
        if self._recorder.trace.closed:
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("flow %s state %s: key discarded (%s)", self._recorder.label, self._recorder.state, reason)
        masked = self.sensitive_now or (pending and bool(self._sensitive))
        data: dict[str, Any] = {"digit": "?" if masked else key.digit, "arrived": key.at, "discarded": reason}
        if masked:
            data["masked"] = True  # said outright: "?" alone could be read as a key
        self._recorder.record("key", data)

    def _not_dtmf(self, key: Key) -> str:
        """The reason for a key that is not a DTMF key; it names the key unless input is sensitive."""
        return "not a DTMF key" if self.sensitive_now else f"not a DTMF key: {key.digit!r}"

    def discard_buffer(self, reason: str) -> None:
        while self.buffer:
            self.discard(self.buffer.popleft(), reason, pending=True)

    def secrets(self) -> Iterator[str]:
        """Sensitive digits this object holds (an entry in progress, or being validated)."""
        if self.collector is not None and self.sensitive_now and self.collector.digits:
            yield self.collector.digits
        if self.secret:
            yield self.secret

    # --- prompts of an input state -------------------------------------------------------------

    def begin(self, first: Prompt | None = None) -> None:
        """An input state (re)starts: its prompts are queued, a collect gets a fresh collector."""
        state = self.state
        assert state is not None
        spec: Menu | Collect | None = state.menu or state.collect
        assert spec is not None
        if self._stray is not None:
            self._drop_held_stray()
        main = state.collect.confirm if (self.confirming and state.collect) else spec.prompt
        self.prompts = [first, main] if first is not None else [main]  # type: ignore[list-item]
        if state.collect is not None and not self.confirming:
            c = state.collect
            self.collector = DigitCollector(
                self._clock, min_digits=c.min_digits, max_digits=c.max_digits,
                terminator=state.settings.terminator, clear_key=c.clear_key,
                first_digit_timeout=state.settings.timeout, inter_digit_timeout=state.settings.inter_digit_timeout,
                schedule=self._schedule,
            )

    def next_prompt(self, barge_in: bool) -> Prompt | None:
        """The next prompt to play before input; None when there is none left, or when keys
        typed ahead skip them (traced `prompt_skip`)."""
        if self.buffer and barge_in:
            for p in self.prompts:
                self._recorder.record("prompt_skip", {"text": self._log_text(p), "reason": "type-ahead"})
            self.prompts = []
        return self.prompts.pop(0) if self.prompts else None

    def skip_prompts(self, reason: str) -> None:
        """The caller barged in by voice: the prompts still queued are skipped (traced)."""
        for p in self.prompts:
            self._recorder.record("prompt_skip", {"text": self._log_text(p), "reason": reason})
        self.prompts = []

    def listen(self) -> bool:
        """Input starts (prompts done, type-ahead used), recorded as `wait` with its timers and
        the retries used so far (what a console or a log shows while the caller thinks). True:
        the collector times it; False: the call's no-input timer must."""
        state = self.state
        assert state is not None
        s = state.settings
        timed = self.collector is not None and not self.confirming
        data: dict[str, Any] = {"for": "confirm" if self.confirming else state.kind, "timeout": s.timeout}
        if timed:
            data.update(inter_digit_timeout=s.inter_digit_timeout, terminator=s.terminator)
        data.update(no_input=self.no_input, no_match=self.no_match, retries=s.retries)
        if s.speech:
            data["speech"] = True  # words count too (the console says "a key or words")
        self._recorder.record("wait", data)
        if timed:
            assert self.collector is not None
            self.collector.start()
            return True
        return False

    # --- keys used as input --------------------------------------------------------------------

    def press(self, key: Key) -> Decision:
        """A key used by the input state. None: it was taken (a digit of an entry) or dropped."""
        if key.digit not in DTMF_KEYS:
            self.discard(key, self._not_dtmf(key))
            return None
        state = self.state
        assert state is not None
        if self.confirming:
            self._consume(key)
            return self._confirm_key(state, key.digit)
        if state.menu is not None:
            self._consume(key)
            return self._menu_key(state, state.menu, key.digit)
        assert state.collect is not None and self.collector is not None
        c = state.collect
        if c.back_key and key.digit == c.back_key and key.digit != state.settings.terminator:
            self._consume(key)
            self._record_collect(self.collector.cancel())
            self.collector = None
            return self._go_back(state)
        outcome = self.collector.press(key.digit)
        if outcome is KeyOutcome.REJECTED:  # cannot happen: a done collector leaves the input phase
            raise CallError("collector rejected a key in the input phase")
        self._consume(key, masked=c.sensitive, entry=outcome)
        if self.collector.result is not None:
            self._last_digit = key.at
            return self.collected(self.collector.result)
        return None

    def said(self, text: str, shown: Mapping[str, Any], at: float) -> Decision:
        """What the caller said (recognised `text`; `shown`: how the trace may show it) in the
        input state: a menu option by its words, digits for a collect, yes / no to confirm.
        Anything else is a no-match, as an unknown key is."""
        state = self.state
        assert state is not None
        meaning: str | None
        if self.confirming:
            answer = yes_no(text)
            meaning = None if answer is None else "1" if answer else "2"
        elif state.menu is not None:
            meaning = choose(state.menu.words, text)
        else:
            meaning = digits_of(text)
        data: dict[str, Any] = {**shown, "heard": at, "consumed": self._recorder.state}
        if meaning is not None:
            data["as"] = "*" if "masked" in shown else meaning
        self._recorder.record("speech", data)
        if meaning is None:
            self.end_entry(EndReason.SPEECH)
            return self.failed("no_match")
        if self.confirming:
            return self._confirm_key(state, meaning)
        if state.menu is not None:
            self._variables["last_key"] = meaning
            return Move(state.menu.options[meaning], f"said {meaning}")
        assert self.collector is not None
        self._last_digit = at
        return self.collected(self.collector.spoken(meaning))

    def hold(self) -> None:
        """The caller is speaking: the entry's timers wait for what they say."""
        if self.collector is not None:
            self.collector.hold()

    def _consume(self, key: Key, masked: bool = False, entry: KeyOutcome | None = None) -> None:
        """Record a used key. Keys of a collect say what they did to the entry (`entry`: digit,
        terminator, cleared); in a sensitive one they are all recorded as `*` with `masked`."""
        digit = "*" if masked else key.digit
        if log.isEnabledFor(logging.DEBUG):
            log.debug("flow %s state %s: key %s", self._recorder.label, self._recorder.state, digit)
        data: dict[str, Any] = {"digit": digit, "arrived": key.at, "consumed": self._recorder.state}
        if entry is not None:
            data["entry"] = entry.value
        if masked:
            data["masked"] = True
        self._recorder.record("key", data)

    def _menu_key(self, state: State, menu: Menu, digit: str) -> Decision:
        target = menu.options.get(digit)
        if target is not None:
            self._variables["last_key"] = digit  # a menu choice: never a digit of sensitive input
            return Move(target, f"key {digit}")
        if menu.repeat_key is not None and digit == menu.repeat_key:
            return Reprompt()
        if menu.back_key is not None and digit == menu.back_key:
            return self._go_back(state)
        return self.failed("no_match")

    def _go_back(self, state: State) -> Decision:
        if len(self.history) >= 2 and self.history[-1] == state.name:
            self.history.pop()
            return Move(self.history[-1], "back")
        return self.failed("no_match")

    def _drop_held_stray(self) -> None:
        """A habitual terminator already typed ahead behind the entry's last digit is dropped
        now, before it can pass for type-ahead meant for this state."""
        if self._stray is not None and self.buffer and self._is_stray(self.buffer[0]):
            self.discard(self.buffer.popleft(), STRAY)

    def _is_stray(self, key: Key) -> bool:
        """True for the first key after a max_digits completion if it is that entry's terminator
        — unless the menu the call is now in takes that key: then it is the caller's choice.
        Asking uses the rule up: only the first key after the entry can be its terminator."""
        stray, self._stray = self._stray, None
        if stray is None or key.digit != stray[0] or key.at > stray[1]:
            return False
        menu = self.state.menu if self.state is not None else None
        return menu is None or key.digit not in (*menu.options, menu.repeat_key, menu.back_key)

    # --- the end of an entry -------------------------------------------------------------------

    def collected(self, result: CollectResult) -> Decision:
        """The collector ended (a key, or one of its timers)."""
        state = self.state
        assert state is not None and state.collect is not None
        c = state.collect
        self.collector = None
        self._record_collect(result)
        if result.reason is EndReason.MAX_DIGITS and state.settings.terminator is not None:
            # from the last digit's press, not from now: it may have been held in the buffer
            self._stray = (state.settings.terminator, self._last_digit + state.settings.inter_digit_timeout)
        digits = result.digits
        if c.sensitive:
            self.secret = digits
        if not digits and result.reason in (EndReason.FIRST_DIGIT_TIMEOUT, EndReason.INTER_DIGIT_TIMEOUT):
            return self.failed("no_input")
        fits = re.fullmatch(c.pattern, digits) if c.pattern else _DIGITS_ONLY.fullmatch(digits)
        if not c.min_digits <= len(digits) <= c.max_digits or fits is None:
            return self.failed("no_match")
        if c.validate is not None:
            return Validate(c.validate, digits)
        return self.accept(digits)

    def validated(self, ok: object, digits: str) -> Decision:
        """The `validate` hook answered `ok` for `digits`."""
        state = self.state
        assert state is not None and state.collect is not None and state.collect.validate is not None
        if not isinstance(ok, bool):
            return Fail(HookError(f"returned {type(ok).__name__}; a validate hook returns True or False",
                                  hook=str(state.collect.validate), state=state.name, where=state.where))
        self._recorder.record("hook", {"hook": str(state.collect.validate), "result": ok})
        return self.accept(digits) if ok else self.failed("no_match")

    def accept(self, digits: str) -> Decision:
        state = self.state
        assert state is not None and state.collect is not None
        self._variables[state.collect.into] = digits
        if state.collect.confirm is not None:
            self.confirming = True
            self.no_input = self.no_match = 0
            return Reprompt()
        return self._leave_collect(state)

    def _leave_collect(self, state: State) -> Decision:
        if state.next is None:
            if state.hangup:
                return End("hangup")
            return Fail(CallError(f"{state.where}: collect state '{state.name}' has no next"))
        return Move(state.next, "collected")

    def _confirm_key(self, state: State, digit: str) -> Decision:
        if digit == "1":
            self.confirming = False
            return self._leave_collect(state)
        if digit == "2":
            return Move(state.name, "re-enter")
        return self.failed("no_match")

    def failed(self, what: Literal["no_input", "no_match"]) -> Decision:
        """A no-input or no-match: re-prompt, or leave once the retries are used up."""
        state = self.state
        assert state is not None
        spec: Menu | Collect | None = state.menu or state.collect
        assert spec is not None
        count = self.no_input + 1 if what == "no_input" else self.no_match + 1
        if what == "no_input":
            self.no_input = count
        else:
            self.no_match = count
        limit = state.settings.max_attempts
        attempts = self.no_input + self.no_match
        data: dict[str, Any] = {"count": count, "retries": state.settings.retries}
        if limit is not None:
            data.update(attempts=attempts, max_attempts=limit)
        self._recorder.record(what, data)
        self._drop_held_stray()
        self.discard_buffer(f"{what} in '{state.name}'")
        if count >= state.settings.retries or (limit is not None and attempts >= limit):
            if spec.on_max_retries:
                return Move(spec.on_max_retries, f"max retries ({what})")
            return Fail(CallError(f"{state.where}: '{state.name}' reached {count} {what} and has no on_max_retries"))
        prompts = spec.no_input if what == "no_input" else spec.no_match
        if self.confirming and state.collect is not None:  # the confirm question has its own, if given
            prompts = (state.collect.confirm_no_input if what == "no_input" else state.collect.confirm_no_match) or prompts
        return Reprompt(prompts[min(count, len(prompts)) - 1] if prompts else None)

    def _record_collect(self, result: CollectResult) -> None:
        c = self.state.collect if self.state is not None else None
        if c is None:
            return
        self._variables[c.into + "_reason"] = result.reason.value
        self._recorder.record("collect", {"into": c.into, "digits": "*" * len(result.digits) if c.sensitive else result.digits,
                                          "reason": result.reason.value})

    def _log_text(self, prompt: Prompt) -> str:
        state = self._recorder.state or ""
        return fill(prompt, self._variables, id=0, state=state, sensitive=self._sensitive).log_text
