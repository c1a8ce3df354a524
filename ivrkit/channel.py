"""The Channel port: everything a call needs from the phone line, and nothing more.

A call runtime (`ivrkit.call.Call`) talks to the caller only through a `Channel`. Three adapters
implement it — the LiveKit worker (`ivrkit.livekit.channel`), the terminal phone
(`ivrkit.console`) and the scripted test phone (`ivrkit.testing`) — so a flow behaves the same
in a unit test, in the console and on a real line.

Events flow *into* the call through one callback (`connect(emit)`): keys, what the caller said
(when the call asked the channel to `listen`), the end of a prompt and the caller hanging up. The call owns the only consumer of those events, so ordering is the
order the adapter emitted them in, and barge-in, type-ahead and timeouts are decided in one
place. Actions flow *out* through the methods below.

Example — the smallest useful adapter, printing prompts and never hearing a key::

    class PrintChannel(Channel):
        def __init__(self) -> None:
            super().__init__(clock=LoopClock(), caller=CallerInfo())

        def play(self, prompt: FilledPrompt) -> None:
            print(prompt.text)
            self.emit(PromptEnded(prompt.id, interrupted=False, at=self.clock.now()))

        def stop(self) -> None:
            pass
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ivrkit.clock import Clock
from ivrkit.errors import CallError, ChannelError
from ivrkit.prompts import FilledPrompt

if TYPE_CHECKING:
    from ivrkit.voice.audio import Pcm

#: RFC 4733 event codes of the sixteen DTMF keys (LiveKit uses the same table).
DTMF_CODES: Mapping[str, int] = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}
DTMF_KEYS = frozenset(DTMF_CODES)


@dataclass(frozen=True, slots=True)
class CallerInfo:
    """Who is calling, as far as the line knows. All optional: a web test caller has no number."""

    number: str | None = None
    called_number: str | None = None
    call_id: str | None = None
    identity: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


# --- events: adapter -> call -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    """A DTMF key from the caller. `digit` is normalised: 0-9, *, #, A-D (upper case)."""

    digit: str
    at: float


@dataclass(frozen=True, slots=True)
class PromptEnded:
    """Playout of prompt `id` finished (`interrupted=False`) or was stopped (`True`)."""

    id: int
    interrupted: bool
    at: float


@dataclass(frozen=True, slots=True)
class Hangup:
    """The caller is gone (hung up, left the room, or the line dropped)."""

    at: float
    reason: str = "caller"


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started speaking (voice activity) while the call listens. Holds the call's
    timers until the `Speech` that must follow it; cuts an interruptible prompt (barge-in)."""

    at: float


@dataclass(frozen=True, slots=True)
class Speech:
    """What the caller said, as recognised, once they stopped speaking. `text` is "" when
    speech was heard but nothing the call listens for was recognised (a no-match). Adapters
    that cannot tell when speech starts may send this alone."""

    text: str
    at: float
    confidence: float | None = None


ChannelEvent = Key | PromptEnded | Hangup | SpeechStarted | Speech


# --- what to listen for: call -> adapter -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listen:
    """What the caller may say now, for the adapter's recogniser (a grammar, not free text):
    `phrases` (a menu's option words, a confirm step's yes / no) and/or `digits` (a collect).
    `sensitive`: what is heard must never be logged (a PIN said aloud)."""

    phrases: tuple[str, ...] = ()
    digits: bool = False
    language: str | None = None
    sensitive: bool = False
    min_digits: int = 1  # how many digits an entry takes (a grammar that knows is more accurate)
    max_digits: int = 20
    #: other words may be said around a phrase, or instead of one (a far end's prompt): the
    #: recogniser must not force them onto a phrase (a garbage model), and reports what it heard
    other: bool = False


Emit = Callable[[ChannelEvent], None]


# --- the recognition port (described in ivrkit.voice.listen) -----------------------------------

#: Where a recognition reports: `SpeechStarted` when the speaker starts, one `Speech` after it.
HeardEmit = Callable[[SpeechStarted | Speech], None]


class Recognition(Protocol):
    """Listening for one request. `feed` is called on the event loop for every frame and must
    return quickly; `close` ends it (an utterance in progress is dropped, nothing is emitted)."""

    def feed(self, pcm: Pcm, at: float) -> None: ...

    def close(self) -> None: ...


class Recognizer(Protocol):
    """Makes a `Recognition` for each `Listen` request of one call."""

    @property
    def sample_rate(self) -> int: ...

    def start(self, request: Listen, emit: HeardEmit) -> Recognition: ...


class Channel(ABC):
    """The port. Subclasses implement the abstract methods; `emit` feeds the call.

    Rules every adapter keeps:
    - `play` returns at once; exactly one `PromptEnded` with that prompt's id follows (also when
      stopped, also when playout failed — log it and emit `interrupted=True`).
    - `stop` returns at once and cuts the playing prompt (barge-in); no-op when nothing plays.
    - Keys are emitted as `Key` with normalised digits; anything else is logged and dropped by
      the adapter, never guessed.
    - After `Hangup` is emitted the adapter emits nothing more.
    - Action failures raise `ChannelError` with a message a person on call can act on.
    - While `sensitive` is True, no log line or record of the adapter names a key, in or out.
    """

    def __init__(self, *, clock: Clock, caller: CallerInfo) -> None:
        self.clock = clock
        self.caller = caller
        self._emit: Emit | None = None
        #: Set by the call: True while the keys are sensitive — the call is in a `sensitive: true`
        #: collect, or sends DTMF filled from a sensitive variable. An adapter that logs or
        #: records a key (a malformed one it drops, one it sends) must mask it then: the call
        #: can mask only what reaches it, and a rejected key never does.
        self.sensitive = False

    def connect(self, emit: Emit) -> None:
        """Called once by the call before it plays anything: where events go from now on."""
        if self._emit is not None:
            raise CallError("this channel is already connected to a call")
        self._emit = emit

    def emit(self, event: ChannelEvent) -> None:
        """Adapters call this (on the event loop thread) for every event."""
        if self._emit is None:
            raise CallError(f"{type(self).__name__} emitted {event!r} before a call connected to it")
        self._emit(event)

    @abstractmethod
    def play(self, prompt: FilledPrompt) -> None:
        """Start playing `prompt`; emit `PromptEnded(prompt.id, ...)` when it ends."""

    @abstractmethod
    def stop(self) -> None:
        """Cut the playing prompt now (barge-in)."""

    async def send_dtmf(self, digit: str) -> None:
        """Send one DTMF key (0-9 * # A-D) to the party the last `dial` reached, or to the caller
        when nothing was dialled; never to both. Pacing is the caller's job."""
        raise ChannelError(f"{type(self).__name__} cannot send DTMF")

    async def transfer(self, to: str, *, play_dialtone: bool = False) -> None:
        """Hand the caller to `to` (a SIP URI or tel: number). Raises `ChannelError` on failure."""
        raise ChannelError(f"{type(self).__name__} cannot transfer calls")

    async def dial(self, to: str, *, trunk: str | None = None, timeout: float = 30.0) -> None:
        """Place an outbound call to `to` and return once it is answered."""
        raise ChannelError(f"{type(self).__name__} cannot place outbound calls")

    def dialled_audio(self) -> AsyncGenerator[Pcm, None]:
        """What the party the last `dial` reached says, from its answer on: mono 16-bit PCM in
        chunks of any size at one sample rate, until it hangs up (the iteration ends). Closing
        the iterator (`aclose()`) stops listening. Raises `ChannelError` when the adapter
        cannot hear a dialled leg (for answering-machine detection)."""
        raise ChannelError(f"{type(self).__name__} cannot hear the party it dialled (needed by amd:)")

    def dialled_recognizer(self) -> Recognizer:
        """What recognises the words of the party the last `dial` reached (`navigate:` steps that
        `expect: {say: [...]}`), fed `dialled_audio()` frames by the call. Raises `ChannelError`
        when the adapter has no recogniser for it."""
        raise ChannelError(f"{type(self).__name__} cannot recognise what the dialled party says "
                           "(needed by expect: {say: [...]})")

    async def bridge(self) -> None:
        """Let the caller and the party the last `dial` reached hear each other, from now until
        either leaves: audio both ways, never keys (the caller's keys reach only the call, the
        keys `send_dtmf` sends reach only the dialled party). While `sensitive` is True the
        dialled party hears silence from the caller (a PIN keyed as tones stays off its line).
        Raises `ChannelError` when the adapter cannot."""
        raise ChannelError(f"{type(self).__name__} cannot bridge the caller to a dialled party")

    async def hang_up_dialled(self) -> None:
        """Hang up the party the last `dial` reached; the call goes on with the caller. Keys
        sent after it go to the caller again. Raises `ChannelError` when the adapter cannot."""
        raise ChannelError(f"{type(self).__name__} cannot hang up a dialled party")

    def listen(self, request: Listen | None) -> None:
        """Hear the caller from now on for `request` (None: stop listening); returns at once.
        While listening, emit `SpeechStarted` when the caller starts speaking and one `Speech`
        after it. The default hears nothing: a channel without audio in stays keys-only, and
        an adapter listens (subscribes to the caller's audio) only between these calls."""

    @abstractmethod
    async def hangup(self) -> None:
        """End the call from our side."""

    async def aclose(self) -> None:
        """Release adapter resources once the call is over. Idempotent."""
