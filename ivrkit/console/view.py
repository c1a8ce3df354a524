"""What the console phone prints: one timestamped line per event, safe for sensitive input.

Why line-oriented and not a full-screen UI: the same output must read well in a terminal, in a
CI log and in a test assertion, and be greppable. Times are seconds since the call started.

Why the call's own records, not the keyboard. A key is pressed before the call has decided
what it is — type-ahead means a key typed during a menu may land in the PIN entry that follows
("1" then "4321#"), a `*` may replay a menu, a `#` may end an entry or be a habit. Only the call
knows, and it says so in its (masked) trace records, which it hands to observers in order
(`console_hooks` wires this view to them). So once `follow_call()` is on, the view prints the
call from those records alone — states, prompts, keys, entries, waits with their timers,
no-input and no-match with the retries used — and copies no rule of the call's: a key shows as
`•` exactly when its record says `masked`. The channel only tells the view what the records
cannot: how long a prompt plays (for the typewriter) and what it did itself (audio, hang-up,
transfer notices, keys that are not phone keys).

Without `follow_call()` (a ConsoleChannel driven with no observers), prompts are printed as the
channel plays them and keys are never shown in clear: nothing has said where they went.

Lines that arrive while a prompt is being typed out are held until its line is finished, so a
prompt is never split by an event line.

With `path`, each state line is followed by the way the call came, from its transition records:
`path: welcome → main → pin  (key 1)` — the states entered (the last `PATH_SHOWN`) and, in
brackets, why the last move was made (the trace's `why`, which never holds a collected value).
The console's text for the picture the dial pad draws.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, TextIO

from ivrkit.clock import Clock, TimerHandle
from ivrkit.flow.model import Flow
from ivrkit.machine import BUILTIN_ERROR

__all__ = ["ConsoleView"]

#: A key is noted as typed ahead when the call used it this long after it was pressed.
TYPED_AHEAD_NOTE = 0.05
#: States shown on a path line; older ones become "…".
PATH_SHOWN = 12


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
        path: bool = False,
    ) -> None:
        self.out = out
        self.typewriter = typewriter  # print a prompt word by word over its playing time
        self.show_path = path  # after each state line, the path of states that led there
        self._path: deque[str] = deque(maxlen=PATH_SHOWN)
        self._moves = 0
        self._why: str | None = None  # why the move the next state record ends was made
        self.clock = clock
        self.start = clock.now() if start is None else start
        self.flow = flow
        self.mask_char = "•" if _can_encode(out, "•") else "x"
        self.state: str | None = None
        self._follow = False  # the call's records drive the view (see the module docstring)
        self._durations: dict[int, float] = {}  # prompt id -> playing time, told by the channel
        self._entered = ""  # the current entry, as shown
        self._words: list[str] = []  # typewriter: words of the playing prompt not printed yet
        self._typing: int | None = None  # typewriter: id of the prompt being typed
        self._open = False  # typewriter: a prompt line is open (no newline yet)
        self._held: list[str] = []  # lines that arrived while a prompt was being typed
        self._tick: TimerHandle | None = None

    def follow_call(self) -> None:
        """From now on the call's records (`observe`) drive what is printed."""
        self._follow = True

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
        """One timestamped line; held while a prompt is being typed out."""
        stamped = f"{self._stamp()} {text}\n"
        if self._open or self._words:
            self._held.append(stamped)
            return
        self._write(stamped)

    def _time(self, at: float) -> str:
        return f"{at - self.start:.2f}"

    # --- from the channel -------------------------------------------------------------------

    def prompt_for(self, state: str) -> None:
        """The channel is about to play a prompt of `state` (shown as entered when unfollowed)."""
        if not self._follow and state != self.state:
            self.enter_state(state)

    def prompt(self, log_text: str, *, barge_in: bool, duration: float = 0.0, id: int | None = None) -> None:
        """A prompt starts playing for `duration` seconds. Followed, it is printed when the call's
        `prompt` record arrives (in order with the rest); unfollowed, at once."""
        if self._follow and id is not None:
            self._durations[id] = duration
            return
        self._show_prompt(log_text, barge_in, duration, id)

    def prompt_done(self) -> None:
        """The prompt played to its end: whatever is left of it is printed."""
        if not self._follow:
            self._stop_typing(rest=True)

    def prompt_cut(self) -> None:
        if not self._follow:
            self._stop_typing(mark=" —")
            self.line("prompt stopped (barge-in)")

    def prompt_abort(self) -> None:
        """The call ended while a prompt played."""
        self._stop_typing(mark=" —")

    def key(self, digit: str) -> None:
        """The caller pressed a phone key. Followed, the call's record shows it; otherwise it is
        shown masked — nothing has said whether it was part of sensitive input."""
        if not self._follow:
            self.line(f"key {self.mask_char}")

    def invalid_key(self, text: str) -> None:
        self.line(f"{text!r} is not a phone key (not sent): press 0-9, *, #, A-D; q hangs up")

    def notice(self, text: str) -> None:
        self.line(text)

    # --- from the call's records ------------------------------------------------------------

    def observe(self, kind: str, state: str | None, data: Mapping[str, Any]) -> None:
        """A (masked) trace record from the call runtime, in trace order."""
        match kind:
            case "state" if state is not None:
                self.enter_state(state)
                self._show_path(state)
            case "transition":
                self._why = str(data.get("why", ""))
            case "prompt":
                pid = data.get("id")
                duration = self._durations.pop(pid, 0.0) if isinstance(pid, int) else 0.0
                self._show_prompt(str(data.get("text", "")), bool(data.get("barge_in", True)), duration, pid)
            case "prompt_end":
                self._prompt_ended(data)
            case "prompt_skip":
                why = "the caller spoke" if data.get("reason") == "speech" else "keys typed ahead"
                self.line(f"prompt skipped ({why}): {data.get('text')}")
            case "speech":
                self._said(data)
            case "listen":
                self._listening(data)
            case "key":
                self._key(state, data)
            case "collect":
                self._collected(data)
            case "wait":
                self._wait(data)
            case "no_input" | "no_match":
                self._retry(kind, data)

    def _listening(self, data: Mapping[str, Any]) -> None:
        """The call listens: what the caller may say (typed after a ", or `say:` in a script)."""
        phrases = [str(p) for p in data.get("phrases", ())]
        what = [*phrases[:8], *(["…"] if len(phrases) > 8 else []), *(["digits"] if data.get("digits") else [])]
        self.line(f'listening for: {", ".join(what)}   (type " then the words)')

    def _said(self, data: Mapping[str, Any]) -> None:
        text = f'"{data.get("text")}"' if not data.get("masked") else self.mask_char
        if "discarded" in data:
            self.line(f"said {text}   not used: {data['discarded']}")
        elif "as" in data:
            self.line(f"said {text}   = {data['as']}")
        else:
            self.line(f"said {text}   (no match)")

    def enter_state(self, name: str) -> None:
        """A state started (again, when the call re-enters it)."""
        self.state = name
        self._entered = ""
        if name == BUILTIN_ERROR:
            self.line("state (the built-in error path: apology, then hang-up)")
            return
        s = self.flow.states.get(name) if self.flow is not None else None
        if s is None:
            self.line(f"state {name}")
            return
        sensitive = ", sensitive" if s.collect is not None and s.collect.sensitive else ""
        self.line(f"state {name} ({s.kind}{sensitive})")

    def _show_path(self, state: str) -> None:
        """After the state line: the path, when a move (its transition record) led here."""
        why, self._why = self._why, None
        if not self.show_path or why is None:
            return
        self._path.append("(error)" if state == BUILTIN_ERROR else state)
        self._moves += 1
        more = "… → " if self._moves > PATH_SHOWN else ""
        self.line(f"path: {more}{' → '.join(self._path)}  ({why})")

    def _prompt_ended(self, data: Mapping[str, Any]) -> None:
        if data.get("id") == self._typing:
            self._stop_typing(mark=" —") if data.get("interrupted") else self._stop_typing(rest=True)
        if data.get("interrupted"):
            by = data.get("by")
            self.line("prompt stopped (barge-in)" if by == "key" else f"prompt stopped ({by or 'the state was left'})")

    def _key(self, state: str | None, data: Mapping[str, Any]) -> None:
        masked = bool(data.get("masked"))
        shown = self.mask_char if masked else str(data.get("digit"))
        arrived = data.get("arrived")
        late = ""
        if isinstance(arrived, (int, float)) and self.clock.now() - arrived > TYPED_AHEAD_NOTE:
            late = f"   (typed ahead at {self._time(arrived)})"
        if "discarded" in data:
            self.line(f"key {shown}   not used: {data['discarded']}{late}")
            return
        entry = data.get("entry")
        if entry == "digit":
            self._entered += shown
            self.line(f"key {shown}   entered: {self._entered}{late}")
        elif entry == "cleared":
            self._entered = ""
            self.line(f"key {self._setting(state, 'clear_key', shown)}   entry cleared{late}")
        elif entry == "terminator":
            self.line(f"key {self._setting(state, 'terminator', shown)}   entered: {self._entered or '(nothing)'}{late}")
        else:
            self.line(f"key {shown}{late}")

    def _setting(self, state: str | None, which: str, default: str) -> str:
        """The key a collect uses as its terminator / clear key: not a secret, only a control
        key, named by the flow (its record carries `*` when the entry is sensitive)."""
        s = self.flow.states.get(state or "") if self.flow is not None else None
        if s is None:
            return default
        value = s.settings.terminator if which == "terminator" else (s.collect.clear_key if s.collect else None)
        return value or default

    def _collected(self, data: Mapping[str, Any]) -> None:
        self._entered = ""
        result = data.get("result")
        extra = f", {result}" if result not in (None, "", "ok") else ""
        self.line(f"collected {data.get('into')} = {data.get('digits') or '(nothing)'} ({data.get('reason')}{extra})")

    def _wait(self, data: Mapping[str, Any]) -> None:
        what = data.get("for")
        if what == "collect":
            ends = f"; {data['terminator']} ends" if data.get("terminator") else ""
            timers = f"first key within {data.get('timeout'):g} s, then {data.get('inter_digit_timeout'):g} s between keys{ends}"
        else:
            timers = f"a key{' or words' if data.get('speech') else ''} within {data.get('timeout'):g} s"
        retries = data.get("retries")
        what = {"menu": "a choice", "collect": "digits", "confirm": "the confirm key"}.get(str(what), str(what))
        self.line(f"waiting for {what}: {timers} (no input {data.get('no_input')}/{retries}, "
                  f"no match {data.get('no_match')}/{retries})")

    def _retry(self, kind: str, data: Mapping[str, Any]) -> None:
        count, retries = data.get("count"), data.get("retries")
        words = kind.replace("_", " ")
        used_up = isinstance(count, int) and isinstance(retries, int) and count >= retries
        self.line(f"{words} {count}/{retries}" + (": retries used up, leaving the state" if used_up else ""))

    # --- the typewriter ---------------------------------------------------------------------

    def _show_prompt(self, log_text: str, barge_in: bool, duration: float, pid: object) -> None:
        """Print a prompt: with `typewriter`, its words appear over `duration`, as it is
        spoken, so a barge-in visibly cuts it; otherwise the whole line at once."""
        self._stop_typing()
        words = log_text.split()
        if not self.typewriter or duration <= 0 or len(words) < 2:
            self.line(f"prompt: {log_text}" + ("" if barge_in else "  [no barge-in]"))
            return
        self.line("prompt:" if barge_in else "prompt [no barge-in]:")
        self._words = words
        self._typing = pid if isinstance(pid, int) else None
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
        self._typing = None
        if self._open:
            self._write(mark + "\n")
            self._open = False
        held, self._held = self._held, []
        for text in held:
            self._write(text)


def _can_encode(out: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(out, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
