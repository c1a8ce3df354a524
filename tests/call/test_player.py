"""The playing prompt alone: which one plays, its end recognised, a failing channel."""

from __future__ import annotations

import logging

import pytest

from ivrkit.call.player import Player
from ivrkit.channel import PromptEnded
from ivrkit.prompts import FilledPrompt, Prompt, fill
from ivrkit.testing import FakeChannel, VirtualClock


def prompt(player: Player, text: str = "Hello", barge_in: bool = True) -> FilledPrompt:
    return fill(Prompt.text(text), {}, id=player.next_id(), state="main", barge_in=barge_in)


def test_only_the_current_prompt_ends() -> None:
    channel = FakeChannel(VirtualClock())
    channel.connect(lambda event: None)
    p = Player(channel, "demo")
    p.play(prompt(p))
    assert p.playing == 1 and p.interruptible
    assert p.stop() == 1 and p.playing is None and p.stop() is None
    p.play(prompt(p, barge_in=False))
    assert p.playing == 2 and not p.interruptible
    assert not p.ended(PromptEnded(1, True, 0.0))  # the stopped one reports its end late: not ours any more
    assert p.ended(PromptEnded(2, False, 0.0)) and p.playing is None


class _Broken(FakeChannel):
    def play(self, prompt: FilledPrompt) -> None:
        raise RuntimeError("no audio")

    def stop(self) -> None:
        raise RuntimeError("gone")


def test_a_channel_that_cannot_play_leaves_nothing_playing(caplog: pytest.LogCaptureFixture) -> None:
    p = Player(_Broken(VirtualClock()), "demo")
    with pytest.raises(RuntimeError):
        p.play(prompt(p))
    assert p.playing is None


def test_a_channel_that_cannot_stop_is_logged_and_the_prompt_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    channel = _Broken(VirtualClock())
    p = Player(channel, "demo")
    p.playing = 7
    with caplog.at_level(logging.WARNING, logger="ivrkit.call"):
        assert p.stop() == 7
    assert p.playing is None and "demo: channel.stop() failed: gone" in caplog.text
