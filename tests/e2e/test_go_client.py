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
