"""The playing prompt alone: which one plays, its end recognised, its records, a failing channel."""

from __future__ import annotations

import logging

import pytest

from ivrkit.call.player import Player
from ivrkit.call.recorder import NO_HOOKS, Recorder
from ivrkit.channel import PromptEnded
from ivrkit.prompts import FilledPrompt, Prompt, fill
from ivrkit.testing import FakeChannel, VirtualClock


def prompt(player: Player, text: str = "Hello", barge_in: bool = True) -> FilledPrompt:
    return fill(Prompt.text(text), {}, id=player.next_id(), state="main", barge_in=barge_in)


def player(channel: FakeChannel) -> tuple[Player, Recorder]:
    recorder = Recorder(channel.clock, NO_HOOKS, lambda: (), "demo")
    return Player(channel, recorder), recorder


def test_only_the_current_prompt_ends_and_each_is_recorded_once() -> None:
    channel = FakeChannel(VirtualClock())
    channel.connect(lambda event: None)
    p, rec = player(channel)
    p.play(prompt(p))
    assert p.playing == 1 and p.interruptible
    p.stop("key")
    p.stop()  # nothing plays: no record
    assert p.playing is None
    p.play(prompt(p, barge_in=False))
    assert p.playing == 2 and not p.interruptible
    assert not p.ended(PromptEnded(1, True, 0.0))  # the stopped one reports its end late: not ours any more
    assert p.ended(PromptEnded(2, False, 0.0)) and p.playing is None
    assert [(e.kind, dict(e.data)) for e in rec.trace] == [
        ("prompt", {"id": 1, "text": "Hello", "barge_in": True}),
        ("prompt_end", {"id": 1, "interrupted": True, "by": "key"}),
        ("prompt", {"id": 2, "text": "Hello", "barge_in": False}),
        ("prompt_end", {"id": 2, "interrupted": False}),
    ]


class _Broken(FakeChannel):
    def play(self, prompt: FilledPrompt) -> None:
        raise RuntimeError("no audio")

    def stop(self) -> None:
        raise RuntimeError("gone")


def test_a_channel_that_cannot_play_leaves_nothing_playing() -> None:
    p, _ = player(_Broken(VirtualClock()))
    with pytest.raises(RuntimeError):
        p.play(prompt(p))
    assert p.playing is None


def test_a_channel_that_cannot_stop_is_logged_and_the_prompt_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    p, rec = player(_Broken(VirtualClock()))
    p.playing = 7
    with caplog.at_level(logging.WARNING, logger="ivrkit.call"):
        p.stop()
    assert p.playing is None and "demo: channel.stop() failed: gone" in caplog.text
    assert rec.trace.of_kind("prompt_end")[0].data == {"id": 7, "interrupted": True}
