"""The caller's voice: when the call listens, for what, and which utterances count.

Press-or-say rules (what the anchors do — VoiceXML, Twilio `<Gather input="dtmf speech">`,
jambonz `gather`):
- A menu or collect with `input: [.., speech]` listens while it waits for input, and while
  its prompt plays when `barge_in` is on (speech then cuts the prompt, as a key does). A
  state that takes only keys never listens, so its call never decodes the caller's audio.
- The adapter's recogniser gets a grammar (`Listen`): the menu's option phrases, digits for a
  collect, yes / no for a confirm step.
- `SpeechStarted` holds the timers (a long answer is no no-input) until its `Speech`; one that
  never comes is bounded by `MAX_UTTERANCE`, then counts as a no-input.
- A key pressed while the caller speaks wins: the speech is dropped when its result arrives
  (jambonz issue 552). Speech outside a listening state is dropped, and traced.
- In a sensitive collect the heard text is never logged or traced (`*`).

`Ears` owns the listening request and those flags; the call asks it and `Keys` decides what
the words mean (a menu option, digits, yes / no), as for keys.
"""

from __future__ import annotations

from typing import Any

from ivrkit.call.recorder import Recorder
from ivrkit.channel import Channel, Listen, Speech
from ivrkit.flow.model import State
from ivrkit.spoken import NO_WORDS, YES_WORDS

#: Clock seconds a caller may speak before the call stops waiting for the recogniser's answer.
MAX_UTTERANCE = 20.0
_YES_NO = tuple(sorted(YES_WORDS | NO_WORDS))


def listen_request(state: State, *, confirming: bool, sensitive: bool) -> Listen | None:
    """What to listen for in `state` (None: it takes no speech)."""
    if not state.settings.speech:
        return None
    language = state.settings.language
    if confirming:
        return Listen(phrases=_YES_NO, language=language, sensitive=sensitive)
    if state.menu is not None:
        phrases = tuple(p for words in state.menu.words.values() for p in words)
        return Listen(phrases=phrases, language=language)
    if state.collect is not None:
        c = state.collect
        return Listen(digits=True, language=language, sensitive=sensitive, min_digits=max(c.min_digits, 1),
                      max_digits=c.max_digits)
    return None


class Ears:
    """Whether the call listens, and whether the caller is speaking (see the module docstring)."""

    __slots__ = ("_channel", "_recorder", "request", "speaking", "drop", "_was_sensitive", "_utterance_for")

    def __init__(self, channel: Channel, recorder: Recorder) -> None:
        self._channel = channel
        self._recorder = recorder
        self.request: Listen | None = None
        self.speaking = False  # SpeechStarted came, its Speech not yet
        self.drop = False  # a key won over the utterance in progress: drop its Speech
        # a sensitive request was made since the last result: a late result (after a key, after
        # the state was left) may hold a PIN said aloud, so a discarded one is masked too. Only
        # a handled result clears it: a new request must not (the PIN's Speech may be queued
        # behind the keys that ended its collect).
        self._was_sensitive = False
        # the request the utterance in progress began under (SpeechStarted)
        self._utterance_for: Listen | None = None

    def want(self, request: Listen | None) -> None:
        """Listen for `request` from now on (None: stop); the channel hears of changes only."""
        if request == self.request:
            return
        self.request = request
        if request is None:
            self.speaking = False
        else:
            self._was_sensitive = self._was_sensitive or request.sensitive
            self._recorder.record("listen", {"phrases": list(request.phrases), "digits": request.digits})
        try:
            self._channel.listen(request)
        except Exception as exc:  # a channel that cannot listen: the caller can still press keys
            self._recorder.record("listen_error", {"error": f"{type(exc).__name__}: {exc}"})
            self.request = None

    def started(self, at: float) -> bool:
        """SpeechStarted: True when the call listens (then it holds its timers)."""
        if self.request is None:
            self._recorder.record("speech", {"heard": at, "discarded": "the call is not listening"})
            return False
        self.speaking = True
        self._utterance_for = self.request
        self._recorder.record("speech_start", {"heard": at})
        return True

    def key_pressed(self) -> bool:
        """A key arrived: if the caller is speaking (True), the key wins."""
        if not self.speaking:
            return False
        self.speaking = False
        self.drop = True
        return True

    def take(self, speech: Speech) -> bool:
        """True when `speech` is for the state listening now; else it is traced as discarded."""
        self.speaking = False
        began_for, self._utterance_for = self._utterance_for, None
        try:
            if self.drop:
                self.drop = False
                self.discard(speech, "a key was pressed while the caller spoke")
                return False
            if self.request is None:
                self.discard(speech, "the call is not listening")
                return False
            if began_for is not None and began_for.sensitive and began_for != self.request:
                # said for a sensitive entry that has ended: never input for the next state
                self.discard(speech, "said while an earlier sensitive entry listened")
                return False
            return True
        finally:
            self._was_sensitive = self.request is not None and self.request.sensitive

    def discard(self, speech: Speech, reason: str) -> None:
        self._recorder.record("speech", {**self.shown(speech.text, late=True), "heard": speech.at, "discarded": reason})

    def shown(self, text: str, *, late: bool = False) -> dict[str, Any]:
        """The heard text as a record may show it: masked while the request is sensitive (and,
        for a `late` result no state used, when the last request was)."""
        if (self.request is not None and self.request.sensitive) or (late and self._was_sensitive):
            return {"text": "*", "masked": True}
        return {"text": text}
