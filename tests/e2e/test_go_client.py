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
