"""The real-stack harness itself: a real livekit-server in a namespace, real callers through it.

These prove the harness before the worker tests rely on it: that keys pressed by one participant
reach another with the RFC 4733 codes, in order, and that a tone one participant plays is heard
by another at the right frequency.
"""

from __future__ import annotations

import subprocess

import pytest
from livekit import api
from stack.callers import DTMF_CODES
from stack.netns import Namespace, list_namespaces, reap_stale
from stack.process import ProcessError
from stack.server import LiveKitServer, render_config
from stack.stack import Stack


def test_server_answers_inside_the_namespace_only(stack: Stack) -> None:
    probe = stack.run(["python3", "-c", f"import urllib.request;print(urllib.request.urlopen('{stack.http_url}/',"
                       " timeout=2).read().decode())"])
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "OK"
    assert stack.server.process.alive()
    # The test address exists only inside the namespace (never probe it from outside: off the
    # namespace it is not ours, and no address but ours is ever a target).
    host_addrs = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    assert f" {stack.address}/" not in host_addrs
    ns_addrs = stack.run(["ip", "-o", "addr", "show"]).stdout
    assert f" {stack.address}/" in ns_addrs


def test_dtmf_from_one_participant_reaches_another_with_rfc4733_codes(stack: Stack, room_name: str) -> None:
    listener = stack.caller(room_name, "listener")
    presser = stack.caller(room_name, "presser")
    listener.wait_for("participant_joined", participant="presser")

    keys = "1#a" + "0123456789*bcd"
    presser.press(keys, interval=0.05)
    got = listener.wait_for_dtmf(len(keys), timeout=10)

    assert [d.digit for d in got] == list(keys)
    assert [d.code for d in got] == [DTMF_CODES[k] for k in keys]
    assert {d.participant for d in got} == {"presser"}
    # The server API, called from inside the namespace, sees both participants.
    listed = stack.api(lambda lk: lk.room.list_participants(api.ListParticipantsRequest(room=room_name)))
    assert sorted(p.identity for p in listed.participants) == ["listener", "presser"]
    assert got[:3] == sorted(got[:3], key=lambda d: d.t)
    assert presser.received_dtmf() == []  # the sender does not hear its own keys


def test_a_played_tone_is_heard_at_its_frequency(stack: Stack, room_name: str) -> None:
    listener = stack.caller(room_name, "ear")
    speaker = stack.caller(room_name, "mouth")
    speaker.play_tone(660.0, seconds=2.0)
    tone = listener.wait_for_tone(660.0, timeout=10, ended=True)
    assert tone.participant == "mouth"

    mark = listener.mark()
    listener.request("frames", "ok", on=True)  # also one event per 20 ms frame
    sent = speaker.play_tone(440.0, seconds=1.0, wait=False)
    heard = listener.wait_for_tone(440.0, timeout=10, since=mark, ended=True)
    speaker.wait_for("tone_sent", 15, id=sent)
    assert heard.freq is not None and abs(heard.freq - 440.0) < 5.0
    assert heard.end is not None and 0.6 < heard.end - heard.start < 1.6
    assert heard.rms_db > -30.0
    # Nothing else was heard in between: the 660 Hz segment ended and only 440 Hz followed.
    assert [round(t.freq or 0) for t in listener.tones(since=mark)] == [440]
    loud = [f for f in listener.events("frame", since=mark) if f["participant"] == "mouth" and f["freq"] is not None]
    assert 30 <= len(loud) <= 80  # ~50 frames of 20 ms in the 1 s tone
    assert all(abs(f["freq"] - 440.0) < 5.0 and f["purity"] > 0.9 for f in loud[2:-2])


def test_a_server_that_cannot_start_is_reported_with_its_log(stack: Stack) -> None:
    # Its own namespace, so the session's server cannot answer the readiness probe for it.
    ns = Namespace.create(name=f"{stack.ns.name}-broken", address=stack.address)
    try:
        # The server parses its config strictly: an unknown key aborts start before it binds.
        broken = render_config(ns.address) + "no_such_key: 1\n"
        with pytest.raises(ProcessError) as failure:
            LiveKitServer.start(ns, stack.log_dir / "broken-server", config=broken, timeout=15)
    finally:
        assert ns.delete() == []
    message = str(failure.value)
    assert "livekit-server exited with" in message  # (status 0: the server exits 0 on a bad config)
    assert "field no_such_key not found" in message  # the log tail shows the server's complaint


def test_namespaces_of_killed_sessions_are_reaped(stack: Stack) -> None:
    # A session killed with SIGKILL leaves its namespace and processes behind; the next session
    # deletes namespaces whose creating PID is gone, killing what still runs there.
    gone = subprocess.Popen(["true"])
    gone.wait()
    ns = Namespace.create(name=f"ivrkit-{gone.pid}-orphan", address=stack.address)
    orphan = subprocess.Popen([*ns.exec_prefix(), "sleep", "60"])
    try:
        assert ns.name in reap_stale()
        assert orphan.wait(5) == -9
        assert ns.name not in list_namespaces()
        assert stack.ns.name in list_namespaces()  # a live session's namespace is left alone
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
        ns.delete()
