"""The prompt the call is playing: which one (by id), whether a key may cut it, and its records.

An adapter reports the end of every prompt it was asked to play, including ones the call has
stopped or left behind; only the end of the *current* one means anything. The player keeps that
id so the call can tell, numbers the prompts of the call, and writes each prompt's `prompt` and
`prompt_end` records (the masked text only). It plays and stops; what a prompt's end leads to is
the call's decision.
"""

from __future__ import annotations

import logging

from ivrkit.call.recorder import Recorder
from ivrkit.channel import Channel, PromptEnded
from ivrkit.prompts import FilledPrompt

log = logging.getLogger("ivrkit.call")


class Player:
    """Plays one prompt at a time on the channel.

    >>> from ivrkit.call.recorder import NO_HOOKS, Recorder
    >>> from ivrkit.testing import FakeChannel, VirtualClock
    >>> from ivrkit.prompts import fill, Prompt
    >>> channel = FakeChannel(VirtualClock()); channel.connect(lambda e: None)
    >>> p = Player(channel, Recorder(channel.clock, NO_HOOKS, lambda: (), "demo"))
    >>> p.play(fill(Prompt.text("Hi"), {}, id=p.next_id(), state="main"))
    >>> p.playing, p.ended(PromptEnded(1, False, 0.0)), p.playing
    (1, True, None)
    """

    __slots__ = ("_channel", "_recorder", "playing", "barge_in", "_seq")

    def __init__(self, channel: Channel, recorder: Recorder) -> None:
        self._channel = channel
        self._recorder = recorder
        self.playing: int | None = None
        self.barge_in = True
        self._seq = 0

    def next_id(self) -> int:
        self._seq += 1
        return self._seq

    @property
    def interruptible(self) -> bool:
        """A prompt plays and a key may cut it (`barge_in`)."""
        return self.playing is not None and self.barge_in

    def play(self, prompt: FilledPrompt) -> None:
        """Start `prompt`; the channel's error propagates (nothing is then playing)."""
        self._recorder.record("prompt", {"id": prompt.id, "text": prompt.log_text, "barge_in": prompt.barge_in})
        self.playing = prompt.id
        self.barge_in = prompt.barge_in
        try:
            self._channel.play(prompt)
        except Exception:
            self.playing = None
            raise

    def stop(self, reason: str = "") -> None:
        """Cut the playing prompt, if any (`reason`: what cut it, for the trace). A channel
        failing to stop is logged: the call has moved on either way."""
        pid, self.playing = self.playing, None
        if pid is None:
            return
        self._recorder.record("prompt_end", {"id": pid, "interrupted": True, "by": reason} if reason
                              else {"id": pid, "interrupted": True})
        try:
            self._channel.stop()
        except Exception as exc:
            log.warning("flow %s: channel.stop() failed: %s", self._recorder.label, exc)

    def ended(self, event: PromptEnded) -> bool:
        """True if `event` ends the current prompt (then nothing is playing any more)."""
        if event.id != self.playing:
            return False
        self.playing = None
        self._recorder.record("prompt_end", {"id": event.id, "interrupted": event.interrupted})
        return True
