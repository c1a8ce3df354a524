"""What the console phone prints: one timestamped line per event, safe for sensitive input.

Why line-oriented and not a full-screen UI: the same output must read well in a terminal, in a
CI log and in a test assertion, and be greppable. Times are seconds since the call started.

Masking. A key is printed when it is pressed, before the call has decided which state consumes
it — and type-ahead means a key typed during a menu may land in the PIN entry that follows
("1" then "4321#"). So the view masks conservatively, from the flow's shape:
- in a sensitive collect, every key is masked;
- in a menu, the first key is shown (the menu takes exactly one key) and the rest are masked
  until the next state starts, when the flow has any sensitive collect;
- in a plain collect, keys are shown until its terminator or max_digits, then masked until the
  next state starts (same condition);
- in a state that takes no keys (say, goto...), keys are type-ahead for the input states it
  leads to: the rules above apply as if in them (any sensitive one: all masked; a hook that
  may pick any state: masked when the flow has a sensitive collect).
The collected value itself is shown only as the call reports it, masked when sensitive.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from ivrkit.clock import Clock, TimerHandle
from ivrkit.flow.model import Flow
from ivrkit.machine import BUILTIN_ERROR

__all__ = ["ConsoleView", "StateInfo"]


@dataclass(frozen=True, slots=True)
class StateInfo:
    """What the view needs to know about one state to mask keys."""

    kind: str
    sensitive: bool = False
    terminator: str | None = None
    max_digits: int | None = None
    clear_key: str | None = None
    confirm: bool = False


def _state_infos(flow: Flow | None) -> dict[str, StateInfo]:
    if flow is None:
        return {}
    infos: dict[str, StateInfo] = {}
    for name, state in flow.states.items():
        c = state.collect
        if c is not None:
            infos[name] = StateInfo(
                "collect", c.sensitive, state.settings.terminator, c.max_digits, c.clear_key, c.confirm is not None
            )
        else:
            infos[name] = StateInfo(state.kind)
    return infos


def _ahead_infos(flow: Flow | None, infos: dict[str, StateInfo]) -> dict[str, StateInfo | None]:
    """For each state that takes no keys itself (say, goto, hook...): how keys typed during it
    must be treated, merged over the input states it can lead to before waiting for the
    caller. None when a hook may pick any next state (treated as sensitive when the flow has a
    sensitive collect)."""
    if flow is None:
        return {}
    ahead: dict[str, StateInfo | None] = {}
    for name in flow.states:
        if infos[name].kind in ("menu", "collect"):
            continue
        targets: list[StateInfo] | None = []
        seen: set[str] = set()
        todo = [name]
        while todo and targets is not None:
            current = todo.pop()
            if current in seen or current not in flow.states:
                continue
            seen.add(current)
            state = flow.states[current]
            if current != name and infos[current].kind in ("menu", "collect"):
                targets.append(infos[current])
            elif state.run is not None:
                targets = None  # a hook may return any state
            else:
                todo.extend(state.targets())
        ahead[name] = None if targets is None else _merge(targets)
    return ahead


def _merge(targets: list[StateInfo]) -> StateInfo:
    if not targets:
        return StateInfo("none")  # no input state follows: typed keys go nowhere
    if any(t.sensitive for t in targets):
        return StateInfo("collect", sensitive=True)
    if all(t.kind == "menu" for t in targets):
        return StateInfo("menu")
    terminators = {t.terminator for t in targets if t.kind == "collect"}
    most = [t.max_digits or 1 if t.kind == "collect" else 1 for t in targets]
    return StateInfo("collect", terminator=terminators.pop() if len(terminators) == 1 else None, max_digits=min(most))


class ConsoleView:
    """Prints the call as it goes. All methods are cheap and never raise on a closed stream."""

    def __init__(
        self,
        out: TextIO,
        clock: Clock,
        *,
        flow: Flow | None = None,
        start: float | None = None,
        typewriter: bool = False,
    ) -> None:
        self.out = out
        self.typewriter = typewriter  # print a prompt word by word over its playing time
        self.clock = clock
        self.start = clock.now() if start is None else start
        self._states = _state_infos(flow)
        self._ahead = _ahead_infos(flow, self._states)
        self._start = flow.start if flow is not None else None
        self._any_sensitive = any(s.sensitive for s in self._states.values())
        self.mask_char = "•" if _can_encode(out, "•") else "x"
        self.state: str | None = None
        self._digits = 0  # digits in the current entry (a clear key resets it)
        self._done_in_state = False  # the state has taken what it needs: later keys are type-ahead
        self._entered = ""  # what the caller has typed into the current collect, as shown
        # Keys pressed that the call has not reported (consumed or discarded) yet: they land in
        # the next state first. Used once `track_call_keys()` says the call reports them.
        self._pressed: deque[tuple[str, bool]] = deque()  # (digit, masked when printed)
        self._tracking = False
        self._words: list[str] = []  # typewriter: words of the playing prompt not printed yet
        self._open = False  # typewriter: a prompt line is open (no newline yet)
        self._tick: TimerHandle | None = None

    # --- output helpers ---------------------------------------------------------------------

    def _stamp(self) -> str:
        return f"[{self.clock.now() - self.start:7.2f}]"

    def _write(self, text: str) -> None:
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):  # a closed pipe must not take the call down
            pass

    def line(self, text: str) -> None:
        if self._open:  # a prompt is being typed: end its line, it resumes on a new one
            self._write("\n")
            self._open = False
        self._write(f"{self._stamp()} {text}\n")

    # --- events -----------------------------------------------------------------------------

    def enter_state(self, name: str) -> None:
        """A state started (from the call's hook, or the first prompt of a new state)."""
        if name == self.state:
            return
        self.state = name
        self._restart_entry()
        if name == BUILTIN_ERROR:
            self.line("state (the built-in error path: apology, then hang-up)")
            return
        info = self._states.get(name)
        kind = f" ({info.kind}{', sensitive' if info.sensitive else ''})" if info else ""
        self.line(f"state {name}{kind}")

    def prompt_for(self, state: str) -> None:
        """A prompt of `state` starts: a new state, or a re-prompt of the current one.

        After a menu's re-prompt (no-match, no-input, repeat) the next key is again the menu's
        choice, and after a collect's the next keys are again its entry (the call discards keys
        buffered before a re-prompt) — so what is shown restarts. Not for a collect with
        `confirm`: its confirm prompt is followed by one key, then possibly by type-ahead for
        a sensitive state, and a prompt does not say which kind it is."""
        if state != self.state:
            self.enter_state(state)
            return
        info = self._states.get(state)
        if info is not None and (info.kind == "menu" or (info.kind == "collect" and not info.confirm)):
            self._restart_entry()

    def track_call_keys(self) -> None:
        """The call reports every key it consumes or discards (through `observe`): from now
        on keys typed ahead and not yet used count against the state they will land in."""
        self._tracking = True

    def _restart_entry(self) -> None:
        self._digits = 0  # digits in the current entry (a clear key resets it)
        self._done_in_state = False
        self._entered = ""
        if self._tracking:
            info = self._mask_info()
            for digit, _masked in self._pressed:  # typed ahead, not used yet: they come first here
                self._count(digit, info)

    def prompt(self, log_text: str, *, barge_in: bool, duration: float = 0.0) -> None:
        """A prompt starts. With `typewriter`, its words appear over `duration`, as it is
        spoken, so a barge-in visibly cuts it; otherwise the whole line at once."""
        self._stop_typing()
        label = "prompt" if barge_in else "prompt [no barge-in]"
        words = log_text.split()
        if not self.typewriter or duration <= 0 or len(words) < 2:
            self.line(f"prompt: {log_text}" + ("" if barge_in else "  [no barge-in]"))
            return
        self.line(f"{label}:")
        self._words = words
        self._type(duration / len(words))

    def _type(self, step: float) -> None:
        self._tick = None
        if not self._words:
            return
        if not self._open:
            self._write("   ")
            self._open = True
        self._write(" " + self._words.pop(0))
        self._tick = self.clock.call_later(step, lambda: self._type(step))

    def _stop_typing(self, *, rest: bool = False, mark: str = "") -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if rest and self._words:
            if not self._open:
                self._write("   ")
            self._write(" " + " ".join(self._words))
            self._open = True
        self._words = []
        if self._open:
            self._write(mark + "\n")
            self._open = False

    def prompt_done(self) -> None:
        """The prompt played to its end: whatever is left of it is printed."""
        self._stop_typing(rest=True)

    def prompt_cut(self) -> None:
        self._stop_typing(mark=" —")
        self.line("prompt stopped (barge-in)")

    def prompt_abort(self) -> None:
        """The call ended while a prompt played."""
        self._stop_typing(mark=" —")

    def _mask_info(self) -> StateInfo | None:
        """The rules keys follow now: the current input state's, or for a state that takes no
        keys, those of the input states it leads to (typed-ahead keys land there)."""
        name = self.state or self._start
        info = self._states.get(name or "")
        if info is None or info.kind in ("menu", "collect"):
            return info
        return self._ahead.get(name or "")

    def should_mask(self, digit: str) -> bool:
        """Decide, and record, whether this key is shown. Call once per key, in order."""
        info = self._mask_info()
        if info is None:
            mask = self._any_sensitive  # unknown where it lands (a hook decides, error path)
        elif info.sensitive:
            mask = True
        elif self._done_in_state:
            mask = self._any_sensitive
        else:
            mask = False
        self._count(digit, info)
        if self._tracking:
            self._pressed.append((digit, mask))
        return mask

    def _count(self, digit: str, info: StateInfo | None) -> None:
        """Advance the current entry by one key under `info`'s rules."""
        if info is not None:
            if info.kind == "menu":
                self._done_in_state = True
            elif info.kind == "collect":
                if digit == info.clear_key:
                    self._digits = 0
                elif digit == info.terminator:
                    self._done_in_state = True
                else:
                    self._digits += 1
                    if info.max_digits is not None and self._digits >= info.max_digits:
                        self._done_in_state = True

    def key(self, digit: str) -> None:
        info = self._states.get(self.state or "")
        in_entry = info is not None and info.kind == "collect" and not self._done_in_state
        shown = self.mask_char if self.should_mask(digit) else digit
        if not in_entry or info is None:
            self.line(f"key {shown}")
            return
        if digit == info.clear_key:
            self._entered = ""
            self.line(f"key {shown}   entry cleared")
            return
        if digit != info.terminator:
            self._entered += shown
        self.line(f"key {shown}   entered: {self._entered}")

    def observe(self, kind: str, state: str | None, data: Mapping[str, Any]) -> None:
        """A (masked) trace record from the call runtime: the authoritative view of what the
        call did with the keys."""
        masked = self._any_sensitive  # without tracking: as masked as any key could be
        if kind == "key" and self._pressed:
            _digit, masked = self._pressed.popleft()  # one record per key pressed, in order
        if kind == "state" and state is not None:
            self.enter_state(state)
        elif kind == "collect":
            result = data.get("result")
            extra = f", {result}" if result not in (None, "", "ok") else ""
            self.line(f"collected {data.get('into')} = {data.get('digits') or '(nothing)'} ({data.get('reason')}{extra})")
        elif kind == "key" and "discarded" in data:
            # Shown as it was shown when pressed: a key masked then stays masked now.
            shown = self.mask_char if masked else data.get("digit")
            self.line(f"unused key {shown}: {data.get('discarded')}")

    def invalid_key(self, text: str) -> None:
        self.line(f"{text!r} is not a phone key (not sent): press 0-9, *, #, A-D; q hangs up")

    def notice(self, text: str) -> None:
        self.line(text)


def _can_encode(out: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(out, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
