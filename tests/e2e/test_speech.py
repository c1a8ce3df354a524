"""Press or say on the real stack: the caller's eSpeak NG speech, published as its microphone
track, is heard by the worker's offline recogniser (pocketsphinx) and moves the flow.

A real livekit-server, the worker as a subprocess (tests/e2e/speech_flows/speech.yaml, prompts
as tones), and the Python test caller (tests/stack/caller.py), which publishes WAV files of
eSpeak speech on its microphone. Each test asserts what the caller hears (which prompt tone
next) and the worker's trace: the move `said 1`, the entry's reason `speech`, the audio
subscribed only while the call listened, and no spoken PIN in any trace or log.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack.callers import CallerProcess
from stack.process import LEAK
from stack.stack import Stack
from stack.testenv import log_text, pins_in, tone_flows, trace_text
from stack.worker import Worker, events

from ivrkit.voice.audio import concat, silence, write_wav
from ivrkit.voice.speech import EspeakVoice

REPO = Path(__file__).resolve().parents[2]
FLOWS = Path(__file__).resolve().parent / "speech_flows"
AGENT = "ivrkit-e2e-speech"
TONES: dict[str, tuple[float, float]] = {
    "main": (440, 2.5), "no_match": (620, 0.6), "account": (700, 1.5), "pin": (780, 1.0), "ok": (860, 0.8),
    "cards": (1000, 0.8), "goodbye": (1150, 0.8),
}


def hz(name: str) -> float:
    return TONES[name][0]


@pytest.fixture(scope="module")
def worker(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    base = tmp_path_factory.mktemp("speech")
    flows = tone_flows(FLOWS.glob("*.yaml"), base / "flows", TONES, 48000)
    trace_dir = base / "traces"
    argv = [sys.executable, "-m", "ivrkit.livekit.worker", "start", str(flows), "--agent-name", AGENT,
            "--executor", "thread", "--http-port", "0", "--trace-dir", str(trace_dir), "--log-level", "DEBUG",
            "--default-flow", "e2e-speech"]
    proc = stack.start(argv, name="worker-speech", env={**stack.env(), "PYTHONPATH": str(REPO)}, cwd=REPO)
    proc.wait_for_log(rf"ivrkit worker registered agent_name={AGENT} flows=e2e-speech executor=thread", 60)
    w = Worker(proc, trace_dir, AGENT)
    yield w
    proc.stop(timeout=10)


@pytest.fixture(scope="module")
def said(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """WAV files of what the caller says, rendered by eSpeak NG (with the pauses around it)."""
    base = tmp_path_factory.mktemp("said")
    voice = EspeakVoice("en-us")
    out = {}
    for text in ("billing", "bills", "two five eight oh", "four three two one"):
        pcm = voice.synthesize(text)
        path = base / f"{text.replace(' ', '_')}.wav"
        write_wav(path, concat([silence(0.3, sample_rate=pcm.sample_rate), pcm, silence(1.2, sample_rate=pcm.sample_rate)]))
        out[text] = str(path)
    return out


def dial(stack: Stack, room: str) -> CallerProcess:
    return stack.caller(room, "caller", agent_name=AGENT)


def test_a_spoken_menu_word_and_spoken_digits_move_the_flow(stack: Stack, worker: Worker, room_name: str,
                                                           said: dict[str, str]) -> None:
    caller = dial(stack, room_name)
    caller.wait_for_tone(hz("main"), 20, ended=True)
    caller.play_audio(said["billing"])
    caller.wait_for_tone(hz("account"), 15, ended=True)
    caller.play_audio(said["two five eight oh"])
    caller.wait_for_tone(hz("pin"), 15, ended=True)
    caller.play_audio(said["four three two one"])  # a PIN said aloud: never in a trace or log
    caller.wait_for_tone(hz("ok"), 15, ended=True)
    caller.wait_for("disconnected", 10)

    trace = worker.trace(room_name)
    moves = [(r["from"], r["to"], r["why"]) for r in events(trace, "transition")]
    assert ("main", "account", "said 1") in moves and ("account", "pin", "collected") in moves, moves
    account, pin = events(trace, "collect")[-2:]
    assert account["reason"] == "speech" and account["digits"] == "2580", account
    assert pin["reason"] == "speech" and pin["digits"] == "****", pin
    speech = events(trace, "speech")
    assert [s["text"] for s in speech] == ["billing", "two five eight oh", "*"] and speech[-1]["masked"], speech
    text = trace_text(trace)
    assert not pins_in(text, ["4321"]) and "four three" not in text, "the spoken account number reached the trace"
    log = log_text(worker.process.log_text())
    assert not pins_in(log, ["4321"]) and "four three two one" not in log, "the spoken account number reached the log"
    assert events(trace, "caller_audio_subscribed"), "the worker never subscribed to the caller's audio"


def test_speech_barges_in_on_the_menu_prompt(stack: Stack, worker: Worker, room_name: str,
                                            said: dict[str, str]) -> None:
    caller = dial(stack, room_name)
    start = caller.wait_for_tone(hz("main"), 20)
    time.sleep(0.5)
    caller.play_audio(said["bills"], wait=False)
    cut = caller.wait_for_tone(hz("main"), 15, ended=True)
    assert cut.end is not None and cut.end - start.start < TONES["main"][1] - 0.5, "the prompt played on"
    caller.wait_for_tone(hz("account"), 15)
    caller.leave()
    trace = worker.trace(room_name)
    ends = [r for r in events(trace, "prompt_end") if r.get("by") == "speech"]
    assert ends, "no prompt was cut by speech"
    assert ("main", "account", "said 1") in [(r["from"], r["to"], r["why"]) for r in events(trace, "transition")]


def test_a_caller_who_republishes_their_microphone_is_still_heard(stack: Stack, worker: Worker, room_name: str,
                                                                 said: dict[str, str]) -> None:
    # A web client switching microphone publishes the new track, then unpublishes the old; a
    # phone's re-INVITE may do it the other way round. Both, once each, while the call listens.
    caller = dial(stack, room_name)
    caller.wait_for_tone(hz("main"), 20, ended=True)
    switched = caller.republish("publish")
    caller.play_audio(said["billing"])
    caller.wait_for_tone(hz("account"), 15, ended=True)
    again = caller.republish("unpublish")
    caller.play_audio(said["two five eight oh"])
    caller.wait_for_tone(hz("pin"), 15, ended=True)
    caller.leave()

    trace = worker.trace(room_name)
    moves = [(r["from"], r["to"], r["why"]) for r in events(trace, "transition")]
    assert ("main", "account", "said 1") in moves and ("account", "pin", "collected") in moves, moves
    assert events(trace, "collect")[0]["digits"] == "2580", trace
    # the listeners moved to each new track, never back to a dying one
    tracks = [r["track"] for r in events(trace, "caller_audio_subscribed")]
    assert tracks[-2:] == [switched["new"], again["new"]], (tracks, switched, again)
    assert switched["old"] in tracks and len(tracks) == 3, tracks
    leaks = [ln for ln in worker.process.log_text().splitlines() if LEAK.search(ln)]
    assert leaks == [], leaks  # the dying tracks' streams were all closed
