"""The caller's keys: type-ahead, barge-in, menu / collect / confirm input, and retries.

Keypad decisions (how a serious IVR behaves):
- *Type-ahead*: keys pressed while a prompt plays, a hook runs or a `say` speaks are kept in
  order in the call's buffer and consumed by the next input state. If keys are already buffered
  when an input state starts and barge-in is on, its prompt is skipped (traced `prompt_skip`).
- *Barge-in*: a key stops an interruptible prompt at once (`channel.stop()`), and is used. With
  `barge_in: false` (legal text) the prompt plays to its end; keys wait in the buffer.
- *Menu*: an option moves on; the repeat key replays the menu prompt (not a retry); the back key
  returns to the previous menu/collect state (no previous: a no-match); any other key is a
  no-match. The no-input timer (`timeout`) starts when the prompt ends.
- *Collect*: see `ivrkit.digits`. Too few digits, a pattern mismatch or a `validate` hook saying
  False is a no-match; nothing typed is a no-input. `<into>_reason` holds the end reason. With
  `confirm`, the confirm prompt plays; 1 accepts, 2 re-enters the state, anything else or
  silence counts as a no-match / no-input of the same state.
- no-input and no-match are counted separately per visit of a state; the n-th one plays the
  n-th (or last) of its escalating prompts, then the state's prompt again. The `retries`-th one
  leaves for `on_max_retries` (none: the error path). Keys still buffered at a no-input or
  no-match are discarded (and traced as such): the caller is being re-prompted.
- *Habitual terminator*: after a collect completes at `max_digits`, a terminator pressed within
  `inter_digit_timeout` ("1234#" for a four-digit PIN) ends that entry, not the next state's: it
  is discarded with that reason instead of being a no-match in the next menu.
- Every key ends up in exactly one trace record, `consumed` or `discarded` with a reason, in the
  order pressed. Keys consumed by a sensitive collect are traced and logged as `*`.
"""

from __future__ import annotations

import re
from typing import Literal

from ivrkit.call_core import _ANNOUNCE, _INPUT, _PROMPT, _SAY, _VALIDATE, _Done, log
from ivrkit.call_tasks import CallTasks
from ivrkit.channel import DTMF_KEYS, Key
from ivrkit.digits import CollectResult, DigitCollector, EndReason, KeyOutcome
from ivrkit.errors import CallError, HookError
from ivrkit.flow.model import Collect, Menu, State
from ivrkit.prompts import Prompt, fill


_STRAY = "terminator after an entry already complete (max_digits)"


class CallInput(CallTasks):
    """Turns the caller's keys into menu choices, collected digits and confirmations."""

    __slots__ = ()

    def _prompt_done(self) -> None:
        """The current prompt ended, or a key barged in on it: `Call` decides what the phase does next."""
        raise NotImplementedError

    # --- keys ----------------------------------------------------------------------------------

    async def _on_key(self, key: Key) -> None:
        if not self._buffer and self._stray(key):  # before barge-in: it must not cut a prompt
            return self._discard(key, _STRAY)
        if self._phase == _INPUT and not self._buffer:
            return self._input_key(key)
        if key.digit not in DTMF_KEYS and not self._buffer:
            return self._discard(key, f"not a DTMF key: {key.digit!r}")
        self._buffer.append(key)  # behind earlier keys: records stay in the order pressed
        if (self._prompt is not None and self._prompt_barge and key.digit in DTMF_KEYS
                and self._phase in (_SAY, _PROMPT, _ANNOUNCE)):
            self._stop_prompt("key")
            self._prompt_done()

    def _consume(self, key: Key, masked: bool = False) -> None:
        self._hops = 0
        digit = "*" if masked else key.digit
        log.debug("flow %s state %s: key %s", self.flow.name, self.state, digit)
        self._record("key", {"digit": digit, "arrived": key.at, "consumed": self.state})

    def _discard_buffer(self, reason: str) -> None:
        while self._buffer:
            self._discard(self._buffer.popleft(), reason, pending=True)

    # --- menu / collect input ------------------------------------------------------------------

    def _start_input(self, state: State, first: Prompt | None = None) -> None:
        spec: Menu | Collect | None = state.menu or state.collect
        assert spec is not None
        main = state.collect.confirm if (self._confirming and state.collect) else spec.prompt
        self._prompts = [first, main] if first is not None else [main]  # type: ignore[list-item]
        if state.collect is not None and not self._confirming:
            c = state.collect
            self._collector = DigitCollector(
                self.clock, on_timeout=self._collector_timeout, min_digits=c.min_digits, max_digits=c.max_digits,
                terminator=state.settings.terminator, clear_key=c.clear_key,
                first_digit_timeout=state.settings.timeout, inter_digit_timeout=state.settings.inter_digit_timeout,
                schedule=self._schedule,
            )
        self._next_prompt()

    def _next_prompt(self) -> None:
        self._phase = _PROMPT
        barge_in = self._current().settings.barge_in
        if self._buffer and barge_in:
            for p in self._prompts:
                self._record("prompt_skip", {"text": fill(p, self.variables, id=0, state=self.state,
                                                            sensitive=self.machine.sensitive).log_text,
                                             "reason": "type-ahead"})
            self._prompts = []
        if self._prompts:
            self._play(self._prompts.pop(0), barge_in=barge_in)
        else:
            self._await_input()

    def _await_input(self) -> None:
        self._phase = _INPUT
        self._hops = 0
        self._errored = False
        if self._draining:
            return  # called again from a key being drained (repeat key): the loop below goes on
        state = self.state
        self._draining = True
        try:
            while self._buffer and self._phase == _INPUT and self.state == state and self._next is None:
                self._input_key(self._buffer.popleft())
        finally:
            self._draining = False
        if self._phase != _INPUT or self._next is not None:
            return
        if self._collector is not None and not self._confirming:
            self._collector.start()
        else:
            self._arm(self._current().settings.timeout, self._no_input_timeout)

    def _stray(self, key: Key) -> bool:
        """True for the first key after a max_digits completion if it is that entry's terminator
        — unless the menu the call is now in takes that key: then it is the caller's choice."""
        stray, self._stray_terminator = self._stray_terminator, None
        if stray is None or key.digit != stray[0] or key.at > stray[1]:
            return False
        menu = self._current().menu
        return menu is None or key.digit not in (*menu.options, menu.repeat_key, menu.back_key)

    def _input_key(self, key: Key) -> None:
        if self._stray_terminator is not None and self._stray(key):
            return self._discard(key, _STRAY)
        if key.digit not in DTMF_KEYS:
            return self._discard(key, f"not a DTMF key: {key.digit!r}")
        state = self._current()
        if self._confirming:
            self._consume(key)
            return self._confirm_key(state, key.digit)
        if state.menu is not None:
            self._consume(key)
            return self._menu_key(state, state.menu, key.digit)
        assert state.collect is not None and self._collector is not None
        c = state.collect
        if c.back_key and key.digit == c.back_key and key.digit != state.settings.terminator:
            self._consume(key)
            self._record_collect(self._collector.cancel())
            self._collector = None
            return self._go_back(state)
        self._consume(key, masked=c.sensitive)
        outcome = self._collector.press(key.digit)
        if outcome is KeyOutcome.REJECTED:  # cannot happen: a done collector leaves _INPUT
            raise CallError("collector rejected a key in the input phase")
        if self._collector.result is not None:
            self._collect_done_now(self._collector.result)

    def _menu_key(self, state: State, menu: Menu, digit: str) -> None:
        self._cancel_timer()
        target = menu.options.get(digit)
        if target is not None:
            self.variables["last_key"] = digit  # a menu choice: never a digit of sensitive input
            return self._move(target, f"key {digit}")
        if menu.repeat_key is not None and digit == menu.repeat_key:
            return self._start_input(state)
        if menu.back_key is not None and digit == menu.back_key:
            return self._go_back(state)
        self._input_failed(state, "no_match")

    def _go_back(self, state: State) -> None:
        if len(self._history) >= 2 and self._history[-1] == state.name:
            self._history.pop()
            return self._move(self._history[-1], "back")
        self._input_failed(state, "no_match")

    def _no_input_timeout(self) -> None:
        self._timer = None
        self._record("timeout", {"what": "no_input"})
        self._input_failed(self._current(), "no_input")

    def _collector_timeout(self, result: CollectResult) -> None:
        self._pending_result = result  # handled right after this timer delivery (_dispatch)

    async def _collect_done(self, result: CollectResult) -> None:
        if result.reason in (EndReason.FIRST_DIGIT_TIMEOUT, EndReason.INTER_DIGIT_TIMEOUT):
            self._record("timeout", {"what": result.reason.value})
        self._collect_done_now(result)

    def _collect_done_now(self, result: CollectResult) -> None:
        state = self._current()
        c = state.collect
        assert c is not None
        self._collector = None
        self._record_collect(result)
        if result.reason is EndReason.MAX_DIGITS and state.settings.terminator is not None:
            self._stray_terminator = (state.settings.terminator, result.at + state.settings.inter_digit_timeout)
        digits = result.digits
        if c.sensitive:
            self._secret = digits
        if not digits and result.reason in (EndReason.FIRST_DIGIT_TIMEOUT, EndReason.INTER_DIGIT_TIMEOUT):
            return self._input_failed(state, "no_input")
        if len(digits) < c.min_digits or (c.pattern is not None and re.fullmatch(c.pattern, digits) is None):
            return self._input_failed(state, "no_match")
        if c.validate is not None:
            self._phase = _VALIDATE
            ref = c.validate
            self._start_task(lambda: self._run_hook(ref, state, digits), lambda d: self._validated(state, digits, d))
            return
        self._accept(state, digits)

    async def _validated(self, state: State, digits: str, done: _Done) -> None:
        if done.error is not None:
            return self._fail(done.error)
        ok = done.result
        assert state.collect is not None and state.collect.validate is not None
        if not isinstance(ok, bool):
            return self._fail(HookError(f"returned {type(ok).__name__}; a validate hook returns True or False",
                                        hook=str(state.collect.validate), state=state.name, where=state.where))
        self._record("hook", {"hook": str(state.collect.validate), "result": ok})
        if ok:
            self._accept(state, digits)
        else:
            self._input_failed(state, "no_match")

    def _accept(self, state: State, digits: str) -> None:
        c = state.collect
        assert c is not None
        self.variables[c.into] = digits
        if c.confirm is not None:
            self._confirming = True
            self._no_input = self._no_match = 0
            return self._start_input(state)
        self._leave_collect(state)

    def _leave_collect(self, state: State) -> None:
        if state.next is None:
            return self._end_call("hangup") if state.hangup else self._fail(
                CallError(f"{state.where}: collect state '{state.name}' has no next"))
        self._move(state.next, "collected")

    def _confirm_key(self, state: State, digit: str) -> None:
        self._cancel_timer()
        if digit == "1":
            self._confirming = False
            return self._leave_collect(state)
        if digit == "2":
            return self._move(state.name, "re-enter")
        self._input_failed(state, "no_match")

    def _input_failed(self, state: State, what: Literal["no_input", "no_match"]) -> None:
        self._cancel_timer()
        spec: Menu | Collect | None = state.menu or state.collect
        assert spec is not None
        count = self._no_input + 1 if what == "no_input" else self._no_match + 1
        if what == "no_input":
            self._no_input = count
        else:
            self._no_match = count
        self._record(what, {"count": count, "retries": state.settings.retries})
        self._discard_buffer(f"{what} in '{state.name}'")
        if count >= state.settings.retries:
            if spec.on_max_retries:
                return self._move(spec.on_max_retries, f"max retries ({what})")
            return self._fail(CallError(f"{state.where}: '{state.name}' reached {count} {what} and has no on_max_retries"))
        prompts = spec.no_input if what == "no_input" else spec.no_match
        first = prompts[min(count, len(prompts)) - 1] if prompts else None
        self._start_input(state, first)

    def _record_collect(self, result: CollectResult) -> None:
        state = self._current()
        c = state.collect
        if c is None:
            return
        self.variables[c.into + "_reason"] = result.reason.value
        self._record("collect", {"into": c.into, "digits": "*" * len(result.digits) if c.sensitive else result.digits,
                                 "reason": result.reason.value})
