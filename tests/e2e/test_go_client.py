"""The Go caller (tests/e2e/goclient, server-sdk-go) and the Python caller exchange DTMF
through a real livekit-server: Go sends with PublishDataPacket(&livekit.SipDTMF{...}) and
receives SipDTMF packets in OnDataPacket; Python uses publish_dtmf / sip_dtmf_received.
"""

from __future__ import annotations

from pathlib import Path

from stack.callers import DTMF_CODES
from stack.stack import Stack


def test_go_caller_sends_dtmf_the_python_caller_receives(stack: Stack, room_name: str, go_caller_built: Path) -> None:
    py = stack.caller(room_name, "py-ear")
    go = stack.go_caller(room_name, "go-mouth")
    py.wait_for("participant_joined", participant="go-mouth")

    keys = "1#" + "*0a9d"
    sent = go.press(keys, interval=0.05)
    assert [(e["digit"], e["code"]) for e in sent] == [(k, DTMF_CODES[k]) for k in keys]

    got = py.wait_for_dtmf(len(keys), timeout=10)
    assert [(d.digit, d.code, d.participant) for d in got] == [(k, DTMF_CODES[k], "go-mouth") for k in keys]


def test_python_caller_sends_dtmf_the_go_caller_receives(stack: Stack, room_name: str, go_caller_built: Path) -> None:
    go = stack.go_caller(room_name, "go-ear")
    py = stack.caller(room_name, "py-mouth")
    go.wait_for("participant_joined", participant="py-mouth")

    keys = "1#" + "2*bc"
    py.press(keys, interval=0.05)
    got = go.wait_for_dtmf(len(keys), timeout=10)
    assert [(d.digit, d.code, d.participant) for d in got] == [(k, DTMF_CODES[k], "py-mouth") for k in keys]
    assert py.received_dtmf() == []


def test_go_caller_drives_the_worker_and_receives_its_dtmf(
    stack: Stack, room_name: str, go_caller_built: Path, tmp_path: Path
) -> None:
    # The worker and its tone flow come from test_worker.py (flows/worker.yaml: "2" -> send_dtmf "12#ABCD").
    import test_worker as tw

    (tmp_path / "flows").mkdir()
    worker = tw._start_worker(stack, tmp_path, "thread", tw.AGENT + "-go")
    try:
        go = stack.go_caller(room_name, "go-phone", agent_name=worker.agent_name)
        agent = go.wait_for("track_published", 30)["participant"]  # the flow runs: its first prompt plays
        go.dtmf("2")
        got = go.wait_for_dtmf(len(tw.SENT), 15)
        assert [(d.digit, d.code) for d in got] == tw.SENT
        assert {d.participant for d in got} == {agent}
        gaps = [b.t - a.t for a, b in zip(got, got[1:])]
        assert all(g > 0.15 for g in gaps), f"keys not paced: {gaps}"
        go.leave()
        trace = worker.trace(room_name)
        assert [(r["digit"], r["code"]) for r in tw.events(trace, "dtmf_published")] == tw.SENT
    finally:
        worker.process.stop(timeout=10)


def test_go_caller_listening_hears_each_prompt_start_and_end_without_decoding(
    stack: Stack, room_name: str, go_caller_built: Path, tmp_path: Path
) -> None:
    # The caller bench/concurrency.py runs by the hundred: sound told from silence by Opus payload
    # size. Each onset it reports must be a prompt the worker's trace started, a few ms later,
    # and each sound must last as long as its tone (flows/worker.yaml: main 2.5 s, pin 1.5 s).
    import test_worker as tw

    (tmp_path / "flows").mkdir()
    worker = tw._start_worker(stack, tmp_path, "thread", tw.AGENT + "-listen")
    try:
        go = stack.go_caller(room_name, "go-listener", agent_name=worker.agent_name, listen=True)
        main = go.wait_for("sound_end", 30)
        mark = go.mark()
        sent = go.dtmf("1")  # the PIN prompt, before the menu's 1.5 s no-input timeout
        pin_onset = go.wait_for("onset", 5, since=mark)
        pin = go.wait_for("sound_end", 5, since=mark)
        onsets = [e.t for e in go.events("onset")]
        go.leave()
        summary = go.wait_for("listen_summary", 1)

        assert abs(main["end"] - main["start"] - tw.TONES["main"][1]) < 0.06, main
        assert abs(pin["end"] - pin["start"] - tw.TONES["pin"][1]) < 0.06, pin
        assert pin_onset.t - float(sent["t0"]) < 0.25
        trace = worker.trace(room_name)
        clock = tw.events(trace, "call")[0]["clock"]
        started = [clock + r["t"] for r in tw.events(trace, "prompt")]
        assert len(onsets) == len(started) == 2, (onsets, started)
        lags = [o - s for o, s in zip(onsets, started)]
        # At most one 20 ms packet plus the way through the server. Not below -5 ms: the trace's
        # time is a wall-clock anchor read once plus monotonic time, the Go caller's its own wall
        # clock read per packet, so the two drift by tens of µs over a call and an onset can read
        # "before" its prompt (CI once measured -0.05 ms).
        assert all(-0.005 <= lag < 0.1 for lag in lags), lags
        sizes = {int(k): n for k, n in summary["payload_sizes"].items()}
        assert sum(n for k, n in sizes.items() if k >= summary["sound_bytes"]) > 150  # 4 s of tones in 20 ms packets
    finally:
        worker.process.stop(timeout=10)
