"""A livekit-agents STT plugin as the call's recogniser: the plugin's speech events become the
call's, one stream per listening state.

The plugin here is a real `stt.STT` subclass (the way livekit-agents' own tests fake one,
tests/fake_stt.py): its stream hears a loud frame as the start of speech and the first quiet
frame after it as the word given — so the adapter runs against livekit-agents' real
`RecognizeStream` machinery (channels, resampling, the metrics task), with no network."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from livekit.agents import NOT_GIVEN, APIConnectOptions, stt
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NotGivenOr
from livekit.agents.utils import AudioBuffer

from ivrkit.channel import Listen, Speech, SpeechStarted
from ivrkit.livekit.plugin_stt import PluginRecognizer
from ivrkit.testing import VirtualClock
from ivrkit.voice.audio import silence, tone


class LoudnessSTT(stt.STT[Any]):
    def __init__(self, word: str = "billing", streaming: bool = True) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=streaming, interim_results=False))
        self.word = word
        self.languages: list[Any] = []

    async def _recognize_impl(self, buffer: AudioBuffer, *, language: NotGivenOr[str] = NOT_GIVEN,
                              conn_options: APIConnectOptions) -> stt.SpeechEvent:
        raise NotImplementedError

    def stream(self, *, language: NotGivenOr[str] = NOT_GIVEN,
               conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> stt.RecognizeStream:
        self.languages.append(language)
        return _Stream(stt=self, conn_options=conn_options)


class _Stream(stt.RecognizeStream):
    async def _run(self) -> None:
        speaking = False
        async for frame in self._input_ch:
            if isinstance(frame, self._FlushSentinel):
                continue
            loud = int(np.abs(np.frombuffer(bytes(frame.data), dtype=np.int16)).max()) > 1000
            if loud and not speaking:
                speaking = True
                self._event_ch.send_nowait(stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH))
            elif not loud and speaking:
                speaking = False
                self._event_ch.send_nowait(stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH))
                word = self._stt.word  # type: ignore[attr-defined]
                self._event_ch.send_nowait(stt.SpeechEvent(
                    type=stt.SpeechEventType.FINAL_TRANSCRIPT,
                    alternatives=[stt.SpeechData(language="en", text=word, confidence=0.9)]))


LOUD, QUIET = tone(440, 0.02, sample_rate=16000, amplitude=0.5), silence(0.02, sample_rate=16000)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_the_plugins_events_become_the_calls() -> None:
    plugin, clock, heard = LoudnessSTT(), VirtualClock(5.0), []
    recognizer = PluginRecognizer(plugin, clock)
    recognition = recognizer.start(Listen(phrases=("billing",), language="en-GB"), heard.append)
    recognition.feed(LOUD, 5.0)
    await settle()
    recognition.feed(QUIET, 5.02)
    await settle()
    assert heard == [SpeechStarted(5.0), Speech("billing", 5.0, 0.9)]
    assert plugin.languages == ["en-GB"]  # the state's language
    recognition.close()
    await settle()


async def test_a_closed_stream_says_nothing_more_and_a_batch_plugin_is_refused() -> None:
    heard: list[Any] = []
    recognition = PluginRecognizer(LoudnessSTT(), VirtualClock()).start(Listen(digits=True), heard.append)
    recognition.feed(LOUD, 0.0)
    await settle()
    recognition.close()
    recognition.feed(QUIET, 0.02)
    await settle()
    assert heard == [SpeechStarted(0.0)]
    with pytest.raises(TypeError, match="does not stream: wrap it in livekit.agents.stt.StreamAdapter"):
        PluginRecognizer(LoudnessSTT(streaming=False), VirtualClock())


def stt_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("ivrkit-stt")]


async def test_the_calls_end_awaits_every_stream_close_so_no_task_outlives_it() -> None:
    recognizer = PluginRecognizer(LoudnessSTT(), VirtualClock())
    recognitions = [recognizer.start(Listen(digits=True), lambda event: None) for _ in range(3)]
    for recognition in recognitions:
        recognition.feed(LOUD, 0.0)
        recognition.close()
    assert len([t for t in stt_tasks() if t.get_name() == "ivrkit-stt-close"]) == 3  # closing, not yet closed
    await recognizer.aclose()
    assert stt_tasks() == []
    assert all(r._stream._input_ch.closed for r in recognitions)  # type: ignore[attr-defined]


class _StuckStream(_Stream):
    async def aclose(self) -> None:  # a plugin whose close never returns (a hung service)
        await asyncio.Event().wait()


class StuckSTT(LoudnessSTT):
    def stream(self, *, language: NotGivenOr[str] = NOT_GIVEN,
               conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> stt.RecognizeStream:
        return _StuckStream(stt=self, conn_options=conn_options)


async def test_a_stream_that_never_closes_is_cancelled_at_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    recognizer = PluginRecognizer(StuckSTT(), VirtualClock())
    recognition = recognizer.start(Listen(digits=True), lambda event: None)
    recognition.close()
    await settle()
    await recognizer.aclose(limit=0)
    assert stt_tasks() == []
    assert "1 STT stream(s) did not close within 0 s: cancelled" in caplog.text
    # the stuck stream's own machinery (livekit-agents' main task) is the plugin's to end
    await stt.RecognizeStream.aclose(recognition._stream)  # type: ignore[attr-defined]
