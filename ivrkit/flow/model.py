"""The Flow model: an immutable, validated picture of one flow file (and its includes).

The loader (`ivrkit.flow.loader`) builds it; everything else only reads it. Every node keeps
`where` (`file:line:col`), so a runtime error about a state can point at its definition.

A state runs in a fixed order: `run` (a hook) → `say` (a prompt) → its action (menu, collect,
goto, transfer, send_dtmf, dial, navigate) → `next` or `hangup`. `kind` names the action.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ivrkit.prompts import Prompt
from ivrkit.voice.amd import AmdSettings

if TYPE_CHECKING:
    from ivrkit.flow.conditions import Condition

#: How a flow hears the caller's keys: `rfc4733` telephone-events (what LiveKit SIP decodes), `inband`
#: tones in the caller's audio (trunks that send no RFC 4733), or `both` (each press counted once).
DtmfMode = Literal["rfc4733", "inband", "both"]
DTMF_MODES: tuple[DtmfMode, ...] = ("rfc4733", "inband", "both")

StateKind = Literal["menu", "collect", "goto", "transfer", "send_dtmf", "dial", "navigate", "hangup", "say"]
#: How a caller may answer a menu or a collect: keys (DTMF), speech, or both.
InputMode = Literal["dtmf", "speech"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Per-state settings, resolved from built-in defaults ← flow `defaults` ← the state's own.

    `timeout` is the first-digit (no-input) timeout, counted from the end of the prompt;
    `inter_digit_timeout` counts from the last key. Both in seconds.
    """

    timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    retries: int = 3
    terminator: str | None = "#"
    barge_in: bool = True
    voice: str | None = None
    language: str | None = None
    hook_timeout: float = 5.0
    dtmf_pace: float = 0.25
    input: tuple[InputMode, ...] = ("dtmf",)
    # no-input and no-match together: the call leaves once they add up to it (None: only the
    # separate `retries` count), as VoiceXML applications count "attempts"
    max_attempts: int | None = None

    @property
    def speech(self) -> bool:
        """The caller may speak the answer (menu words, spoken digits)."""
        return "speech" in self.input


@dataclass(frozen=True, slots=True)
class HookRef:
    """`module:function` as written in the flow; resolved to a callable by the loader."""

    module: str
    function: str
    where: str = ""
    sets: tuple[str, ...] = ()  # variables the hook declares it may set (for template checks)
    timeout: float | None = None  # overrides Settings.hook_timeout

    def __str__(self) -> str:
        return f"{self.module}:{self.function}"


@dataclass(frozen=True, slots=True)
class Menu:
    """Single-key choice. Keys are DTMF keys as strings ("1", "*", "#", "A"). `words` holds, per
    key, the phrases that choose that option when the state takes speech (lower case, one space
    between words): a spoken choice is the same option, so it takes the same edge."""

    prompt: Prompt
    options: Mapping[str, str]  # key -> target state
    words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # key -> phrases
    no_input: tuple[Prompt, ...] = ()  # escalating: the n-th no-input plays no_input[min(n, len)-1]
    no_match: tuple[Prompt, ...] = ()
    on_max_retries: str | None = None  # None: the flow's error path
    repeat_key: str | None = None  # replays the menu, not counted as a retry
    back_key: str | None = None  # returns to the previous menu/collect state


@dataclass(frozen=True, slots=True)
class Collect:
    """Multi-digit input into a variable."""

    prompt: Prompt
    into: str
    min_digits: int = 1
    max_digits: int = 20
    sensitive: bool = False
    pattern: str | None = None  # full-match regex on the digits
    validate: HookRef | None = None  # hook(ctx, digits) -> bool
    confirm: Prompt | None = None  # "You entered {x}. Press 1 to confirm, 2 to re-enter."
    clear_key: str | None = None  # clears the digits typed so far
    back_key: str | None = None
    no_input: tuple[Prompt, ...] = ()
    no_match: tuple[Prompt, ...] = ()  # played when input is too short or fails validation
    on_max_retries: str | None = None
    # The confirm step is another question ("press 1 to confirm"): its own retry prompts, so
    # that silence there is not answered with the entry's "please type your PIN" (empty: the
    # entry's no_input / no_match, as before these existed).
    confirm_no_input: tuple[Prompt, ...] = ()
    confirm_no_match: tuple[Prompt, ...] = ()


@dataclass(frozen=True, slots=True)
class Branch:
    """One arm of a `goto`: go to `target` when `condition` holds (None: always)."""

    target: str
    condition: Condition | None = None
    where: str = ""


@dataclass(frozen=True, slots=True)
class Transfer:
    to: str  # SIP URI or tel:, may hold {templates}
    announce: Prompt | None = None
    play_dialtone: bool = False


@dataclass(frozen=True, slots=True)
class SendDtmf:
    digits: str  # 0-9 * # A-D, 'w' = 0.5 s pause; may hold {templates}
    pace: float | None = None  # seconds between keys; None: Settings.dtmf_pace


@dataclass(frozen=True, slots=True)
class Amd:
    """Answering-machine detection on a dial's answer (`ivrkit.voice.amd`). The outcome goes
    into `into` (human | machine | silence | unsure), its cause into `<into>_cause`; with
    `wait_for_beep` (seconds), a machine's beep is awaited that long and `<into>_beep` says
    whether it came, so the next state speaks after it."""

    settings: AmdSettings = field(default_factory=AmdSettings)
    into: str = "amd"
    wait_for_beep: float | None = None


@dataclass(frozen=True, slots=True)
class Dial:
    """An outbound call into a leg of its own (no keys cross between it and the caller).
    `hold`: played to the caller, looping, while it rings (and AMD listens); `bridge`: once
    answered, the caller and the far end hear each other (audio only, never keys)."""

    to: str
    trunk: str | None = None
    timeout: float = 30.0
    amd: Amd | None = None
    hold: Prompt | None = None
    bridge: bool = False


@dataclass(frozen=True, slots=True)
class NavStep:
    """One step of a `navigate:` list, driving the far end's IVR on the dialled leg:
    `listen` waits until the far end has spoken and then been silent for `silence` seconds (the
    end of its prompt); `send` keys its DTMF (a template, masked when filled from a sensitive
    variable) `pace` apart; `pause` waits `seconds`; `expect` waits for `speech` or a `tone` to
    begin, or (`words`) for the far end to say one of `say` — hearing one of `unexpected`
    ("invalid entry") fails at once. `listen` and `expect` fail after `timeout` seconds, which
    takes `on_fail`."""

    kind: Literal["listen", "send", "pause", "expect"]
    where: str = ""
    silence: float = 0.8
    timeout: float = 10.0
    keys: str = ""
    pace: float | None = None
    seconds: float = 0.0
    expect: Literal["speech", "tone", "words"] = "speech"
    say: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Navigate:
    """`hold`: played to the caller, looping, while the steps run; `bridge`: once they all
    succeeded, the caller and the far end hear each other (audio only, never keys);
    `hang_up`: once the steps are over (done or failed), the dialled leg is hung up — the agent
    fetched what it needed by keypad, and the call goes on with the caller alone."""

    steps: tuple[NavStep, ...]
    on_fail: str | None = None  # None: the error path
    hold: Prompt | None = None
    bridge: bool = False
    hang_up: bool = False


@dataclass(frozen=True, slots=True)
class State:
    name: str
    where: str
    settings: Settings = field(default_factory=Settings)
    run: HookRef | None = None
    say: Prompt | None = None
    menu: Menu | None = None
    collect: Collect | None = None
    goto: tuple[Branch, ...] = ()
    transfer: Transfer | None = None
    send_dtmf: SendDtmf | None = None
    dial: Dial | None = None
    navigate: Navigate | None = None
    hangup: bool = False
    next: str | None = None
    on_error: str | None = None  # overrides the flow's error state for this state

    @property
    def kind(self) -> StateKind:
        if self.menu is not None:
            return "menu"
        if self.collect is not None:
            return "collect"
        if self.goto:
            return "goto"
        if self.transfer is not None:
            return "transfer"
        if self.send_dtmf is not None:
            return "send_dtmf"
        if self.dial is not None:
            return "dial"
        if self.navigate is not None:
            return "navigate"
        if self.hangup:
            return "hangup"
        return "say"

    @property
    def waits_for_caller(self) -> bool:
        """True when the state can block on the caller (used by the spin-loop check)."""
        return self.kind in ("menu", "collect", "transfer", "hangup", "dial", "navigate")

    def prompts(self) -> Iterator[Prompt]:
        """Every prompt this state can play (for `ivrkit prompts bake` and checks)."""
        if self.say is not None:
            yield self.say
        for action in (self.menu, self.collect):
            if action is not None:
                yield action.prompt
                yield from action.no_input
                yield from action.no_match
        if self.collect is not None and self.collect.confirm is not None:
            yield self.collect.confirm
            yield from self.collect.confirm_no_input
            yield from self.collect.confirm_no_match
        if self.transfer is not None and self.transfer.announce is not None:
            yield self.transfer.announce

    def targets(self, *, errors: bool = True) -> Iterator[str]:
        """Every state name this state can lead to, as written (`errors=False`: not `on_error`)."""
        if self.menu is not None:
            yield from self.menu.options.values()
            if self.menu.on_max_retries:
                yield self.menu.on_max_retries
        if self.collect is not None and self.collect.on_max_retries:
            yield self.collect.on_max_retries
        for branch in self.goto:
            yield branch.target
        if self.navigate is not None and self.navigate.on_fail:
            yield self.navigate.on_fail
        if self.next:
            yield self.next
        if self.on_error and errors:
            yield self.on_error


@dataclass(frozen=True, slots=True)
class Flow:
    """A loaded, checked flow. `states` preserves file order; `start` names one of them."""

    name: str
    start: str
    states: Mapping[str, State]
    file: str
    defaults: Settings = field(default_factory=Settings)
    error_state: str | None = None  # None: built-in "sorry, something went wrong" + hang up
    prompts: Mapping[str, Prompt] = field(default_factory=dict)
    call_start: tuple[HookRef, ...] = ()
    call_end: tuple[HookRef, ...] = ()
    files: tuple[str, ...] = ()  # the file and every include, for reload watching
    python_path: tuple[str, ...] = ()  # absolute folders its hooks are imported from
    tts: HookRef | None = None  # module:factory of a livekit-agents TTS (the worker's adapter uses it)
    stt: HookRef | None = None  # module:factory of a streaming livekit-agents STT (None: the offline one)
    dtmf: DtmfMode | None = None  # None: the worker's --dtmf (default rfc4733); the worker's adapter uses it

    def state(self, name: str) -> State:
        return self.states[name]
