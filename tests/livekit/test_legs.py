"""`DialledLegs.bridge` and what ends a bridge, without a LiveKit server: the caller's room,
its audio (`ParticipantAudio.listen`) and the dialled legs are stand-ins holding only what
`DialledLegs` uses (a real leg needs a room on a server: tests/e2e/test_sip_bridge.py bridges
real SIP legs). The bridge's track source is a real `rtc.AudioSource` (no server needed)."""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncGenerator, Callable
from typing import Any

import pytest

from ivrkit.errors import ChannelError
from ivrkit.livekit.legs import DialledLegs
from ivrkit.livekit.participant_audio import AudioSink
from ivrkit.testing import VirtualClock
from ivrkit.voice.audio import Pcm


class Caller:
    """Stands in for `ParticipantAudio`: `capture(level)` hands a frame to every listening sink."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.sinks: list[AudioSink] = []

    def listen(self, sink: AudioSink, *, sample_rate: int) -> Callable[[], None]:
        self.sinks.append(sink)
        return lambda: self.sinks.remove(sink)

    def capture(self, level: int) -> None:
        for sink in list(self.sinks):
            sink(Pcm(level.to_bytes(2, "little", signed=True) * 160, 16000), self.clock.now())
        self.clock.advance(0.02)


class Leg:
    """Stands in for `FarLeg`: what it is sent (`heard`: levels), whether we listen to it, and
    `hang_up()` as the far end leaving (its audio ends)."""

    def __init__(self, name: str) -> None:
        self.room = types.SimpleNamespace(name=name)
        self.source = self  # the track the far end hears: `capture_frame` below
        self.heard: list[int] = []
        self.listening = 0
        self.closed = False
        self._gone = asyncio.Event()

    async def capture_frame(self, frame: Any) -> None:
        self.heard.append(int.from_bytes(bytes(frame.data)[:2], "little", signed=True))

    async def hear(self, sample_rate: int) -> AsyncGenerator[Pcm, None]:
        self.listening += 1
        try:
            await self._gone.wait()  # says nothing (its audio to the caller is the bridge's concern)
            return
            yield
        finally:
            self.listening -= 1

    def hang_up(self) -> None:
        self._gone.set()

    async def close(self, lk: object) -> None:
        self.closed = True


class Room:
    def __init__(self, fail: int = 0) -> None:
        self.name = "call"
        self.published = 0
        self.fail = fail  # publishes that fail before one succeeds
        self.local_participant = self

    async def publish_track(self, track: object, options: object) -> None:
        self.published += 1
        if self.fail:
            self.fail -= 1
            raise RuntimeError("engine: connection lost")


Records = list[tuple[str, dict[str, object]]]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def legs_for(room: Room, caller: Caller, records: Records,
             sensitive: Callable[[], bool] = lambda: False) -> DialledLegs:
    return DialledLegs(room, None, None, None, caller, muted=sensitive, clock=caller.clock,  # type: ignore[arg-type]
                       record=lambda kind, at, fields: records.append((kind, fields)))


async def test_a_second_bridge_to_another_leg_replaces_the_first_and_one_to_the_same_leg_does_nothing() -> None:
    caller, records = Caller(VirtualClock()), Records()
    legs = legs_for(Room(), caller, records)
    first, second = Leg("call--leg1"), Leg("call--leg2")
    legs.far = first  # type: ignore[assignment]  # as an answered dial sets it
    await legs.bridge()
    await settle()
    caller.capture(1)
    await settle()
    legs.far = second  # type: ignore[assignment]  # a second dial answered, the first leg still up
    await legs.bridge()
    await settle()
    caller.capture(2)
    await settle()
    await legs.bridge()  # the leg already bridged: nothing changes
    await settle()
    caller.capture(3)
    await settle()
    assert first.heard == [1] and second.heard == [2, 3]
    assert first.listening == 0 and second.listening == 1 and len(caller.sinks) == 1
    assert [(k, f["room"]) for k, f in records] == [("bridged", "call--leg1"), ("unbridged", "call--leg1"),
                                                    ("bridged", "call--leg2")]
    await legs.aclose()
    assert caller.sinks == [] and second.listening == 0 and first.closed is False  # legs.far alone was dialled
    assert records[-1][0] == "unbridged" and records[-1][1]["frames_to_far"] == 2


async def test_after_the_leg_is_hung_up_by_either_end_a_new_leg_can_be_bridged() -> None:
    caller, records = Caller(VirtualClock()), Records()
    legs = legs_for(Room(), caller, records)
    first, second, third = Leg("call--leg1"), Leg("call--leg2"), Leg("call--leg3")
    legs.far = first  # type: ignore[assignment]
    await legs.bridge()
    await legs.hang_up_far()  # the flow hangs the leg up (navigate's hang_up: true)
    assert legs.far is None and first.closed and caller.sinks == []
    legs.far = second  # type: ignore[assignment]
    await legs.bridge()
    await settle()
    second.hang_up()  # the far end hangs up: its audio ends, so does the bridge
    await settle()
    assert caller.sinks == [] and second.listening == 0
    await legs.bridge()  # bridging the same leg again: the ended bridge is replaced, not kept
    await settle()
    assert [k for k, _ in records].count("bridged") == 3
    legs.far = third  # type: ignore[assignment]
    await legs.bridge()
    await settle()
    caller.capture(4)
    await settle()
    assert third.heard == [4] and second.heard == [] and len(caller.sinks) == 1
    await legs.aclose()


async def test_a_failed_publish_leaves_no_source_behind_and_the_next_bridge_publishes_again() -> None:
    caller, records = Caller(VirtualClock()), Records()
    room = Room(fail=1)
    legs = legs_for(room, caller, records)
    leg = Leg("call--leg1")
    legs.far = leg  # type: ignore[assignment]
    with pytest.raises(ChannelError, match="publishing the far end's audio to the caller failed"):
        await legs.bridge()
    assert caller.sinks == [] and records == []
    await legs.bridge()
    await settle()
    caller.capture(5)
    await settle()
    assert room.published == 2 and leg.heard == [5] and [k for k, _ in records] == ["bridged"]
    await legs.aclose()


async def test_the_callers_audio_is_muted_as_captured_and_the_count_is_traced() -> None:
    caller, records = Caller(VirtualClock()), Records()
    sensitive = [False]
    legs = legs_for(Room(), caller, records, lambda: sensitive[0])
    leg = Leg("call--leg1")
    legs.far = leg  # type: ignore[assignment]
    await legs.bridge()
    await settle()
    sensitive[0] = True
    caller.capture(9)  # a PIN tone
    sensitive[0] = False
    caller.capture(9)  # its tail, just after the collect ended
    caller.clock.advance(1.0)
    caller.capture(6)
    await settle()
    await legs.aclose()
    assert leg.heard == [0, 0, 6]
    assert records[-1] == ("unbridged", {"room": "call--leg1", "frames_to_far": 3, "frames_to_caller": 0,
                                         "muted_frames": 2})
