"""LiveKitChannel's key handling without a room: `_on_dtmf` run on a stand-in holding only the
attributes it reads (a real `LiveKitChannel` needs the LiveKit FFI audio source, which the e2e
tests cover). What matters here is what it logs and records for a key it rejects."""

from __future__ import annotations

import logging
import types

import pytest

from ivrkit.livekit.channel import SENSITIVE_REJECT, ChannelLog, LiveKitChannel
from ivrkit.testing import VirtualClock


def stand_in(sensitive: bool) -> types.SimpleNamespace:
    return types.SimpleNamespace(ended=None, _emit=lambda event: None, caller_identity="caller",
                                 log=logging.getLogger("ivrkit.livekit"), record=ChannelLog(),
                                 clock=VirtualClock(), sensitive=sensitive)


def malformed(digit: str) -> types.SimpleNamespace:
    """A key whose code disagrees with its digit (a broken or hostile client)."""
    return types.SimpleNamespace(participant=types.SimpleNamespace(identity="caller"), code=0, digit=digit)


@pytest.mark.parametrize("sensitive", [False, True])
def test_a_malformed_key_names_its_digit_only_outside_sensitive_input(
        sensitive: bool, caplog: pytest.LogCaptureFixture) -> None:
    channel = stand_in(sensitive)
    with caplog.at_level(logging.WARNING, logger="ivrkit.livekit"):
        for digit in "4321":
            LiveKitChannel._on_dtmf(channel, malformed(digit))  # type: ignore[arg-type]
    whys = [r["why"] for r in channel.record.ignored_dtmf]
    assert len(caplog.records) == 4 and len(whys) == 4
    if sensitive:
        assert whys == [SENSITIVE_REJECT] * 4
        assert {r.getMessage() for r in caplog.records} == {f"DTMF from the caller dropped: {SENSITIVE_REJECT}"}
    else:
        assert "digit '4'" in whys[0] and "digit '4'" in caplog.records[0].getMessage()


def test_a_key_arriving_after_the_caller_left_is_recorded_without_its_digit(caplog: pytest.LogCaptureFixture) -> None:
    """Keys and "participant left" travel separately in LiveKit: a late key is accounted for."""
    channel = stand_in(sensitive=True)
    channel.ended = "caller left"
    emitted: list[object] = []
    channel._emit = emitted.append
    with caplog.at_level(logging.INFO, logger="ivrkit.livekit"):
        LiveKitChannel._on_dtmf(channel, types.SimpleNamespace(  # type: ignore[arg-type]
            participant=types.SimpleNamespace(identity="caller"), code=7, digit="7"))
    assert emitted == []
    assert channel.record.ignored_dtmf == [{"from": "caller", "why": "arrived after the call ended (caller left)"}]
    assert [r.getMessage() for r in caplog.records] == ["DTMF arrived after the call ended (caller left): ignored"]


def test_sensitive_input_with_another_sip_leg_in_the_callers_room_is_logged_and_recorded(
        caplog: pytest.LogCaptureFixture) -> None:
    """LiveKit SIP plays the caller's keys to every SIP leg in its room: a leg there that is not
    the caller (ivrkit's own dials have rooms of their own) is flagged as the PIN entry starts."""
    from livekit import rtc

    sip, web = rtc.ParticipantKind.PARTICIPANT_KIND_SIP, rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
    channel = stand_in(sensitive=False)
    channel.room = types.SimpleNamespace(remote_participants={
        "caller": types.SimpleNamespace(identity="caller", kind=sip),
        "viewer": types.SimpleNamespace(identity="viewer", kind=web)})
    setter = LiveKitChannel.sensitive.fset
    assert setter is not None
    with caplog.at_level(logging.WARNING, logger="ivrkit.livekit"):
        setter(channel, True)  # only the caller is a SIP leg: nothing to say
        setter(channel, False)
        channel.room.remote_participants["pbx"] = types.SimpleNamespace(identity="pbx", kind=sip)
        records: list[tuple[str, dict[str, object]]] = []
        channel.record.listener = lambda kind, at, fields: records.append((kind, fields))
        setter(channel, True)
        setter(channel, True)  # still the same sensitive input: said once
    assert records == [("sensitive_input_exposed", {"sip_legs": ["pbx"]})]
    assert [r.getMessage() for r in caplog.records] == [
        "sensitive input while SIP participant(s) pbx share the caller's room: LiveKit SIP plays the caller's keys to them"]
    assert channel._sensitive is True
