"""The bridge's pumps, fed by real async generators of PCM: each direction carries its side's
frames in order, the caller's audio reaches the far end as silence while input is sensitive —
decided as each frame is captured, and for `HOLD_OVER` after — and the bridge ends with either
side or at `close()`. Time is a `VirtualClock`; the caller's audio is a stand-in for
`ParticipantAudio.listen` that hands frames to the bridge's sink as the test captures them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

from ivrkit.livekit.bridge import BRIDGE_QUEUE, HOLD_OVER, Bridge, Captured, Muting, caller_frames
from ivrkit.livekit.participant_audio import AudioSink
from ivrkit.testing import VirtualClock
from ivrkit.voice.audio import Pcm


def pcm(level: int) -> Pcm:
    return Pcm(level.to_bytes(2, "little", signed=True) * 160, 8000)


async def frames(values: list[int], *, then_wait: bool = False) -> AsyncGenerator[Pcm, None]:
    for v in values:
        yield pcm(v)
        await asyncio.sleep(0)
    if then_wait:
        await asyncio.Event().wait()


async def settle(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


class Heard:
    """A sink that notes each frame's level; `hold()` makes it wait (a full AudioSource queue)."""

    def __init__(self) -> None:
        self.levels: list[int] = []
        self.open = asyncio.Event()
        self.open.set()

    async def __call__(self, pcm: Pcm) -> None:
        await self.open.wait()
        self.levels.append(int.from_bytes(pcm.samples[:2], "little", signed=True))


class Caller:
    """Stands in for `ParticipantAudio.listen`: `capture(level)` hands a frame to the listening sink
    at the clock's time, as ParticipantAudio does when a frame arrives."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.sink: AudioSink | None = None
        self.stopped = 0

    def listen(self, sink: AudioSink) -> Callable[[], None]:
        self.sink = sink

        def stop() -> None:
            self.sink = None
            self.stopped += 1
        return stop

    def capture(self, level: int, *, then: float = 0.02) -> None:
        assert self.sink is not None, "the bridge is not listening"
        self.sink(pcm(level), self.clock.now())
        self.clock.advance(then)


async def test_each_side_hears_the_other_and_the_caller_is_silent_while_sensitive() -> None:
    clock = VirtualClock()
    sensitive = [False]
    to_far, to_caller = Heard(), Heard()
    caller = Caller(clock)
    bridge = Bridge(caller_frames(caller.listen, Muting(lambda: sensitive[0])), to_far, frames([7, 8, 9], then_wait=True),
                    to_caller)
    await settle()
    for v in (100, 200, 300, 400):
        sensitive[0] = v in (200, 300)  # a PIN collect runs while these two frames come
        caller.capture(v, then=1.0)  # the last frame comes after the hold-over
        await settle()
    await bridge.close()
    assert to_far.levels == [100, 0, 0, 400]
    assert to_caller.levels == [7, 8, 9]
    assert bridge.frames == [4, 3] and bridge.muted_frames == 2


async def test_a_frame_captured_while_sensitive_stays_silent_though_the_collect_ended_before_it_was_sent() -> None:
    """The last PIN digit's tone is still queued (the far end's track is slow to take it) when
    its RFC 4733 event ends the collect; and the rest of the tone arrives after that."""
    clock = VirtualClock()
    sensitive = [False]
    to_far = Heard()
    caller = Caller(clock)
    bridge = Bridge(caller_frames(caller.listen, Muting(lambda: sensitive[0])), to_far, frames([], then_wait=True),
                    Heard())
    await settle()
    caller.capture(100)
    await settle()
    to_far.open.clear()  # from here the far end's track takes nothing: frames queue up
    sensitive[0] = True  # the PIN collect
    caller.capture(1000)  # the last digit's tone, captured while sensitive
    caller.capture(1000)
    sensitive[0] = False  # its RFC 4733 event ended the collect (at 0.06)
    caller.capture(1000)  # the tone's tail, after the collect ended
    clock.advance(HOLD_OVER - 0.1)
    caller.capture(500)  # still within the hold-over: silent
    clock.advance(0.1)
    caller.capture(600)  # the hold-over is over
    to_far.open.set()
    await settle()
    await bridge.close()
    assert to_far.levels == [100, 0, 0, 0, 0, 600]
    assert bridge.frames[0] == 6 and bridge.muted_frames == 4


async def test_muted_frames_counts_frames_sent_not_frames_dropped_from_a_full_queue() -> None:
    clock = VirtualClock()
    to_far = Heard()
    to_far.open.clear()
    caller = Caller(clock)
    bridge = Bridge(caller_frames(caller.listen, Muting(lambda: True)), to_far, frames([], then_wait=True), Heard())
    await settle()
    caller.capture(1)  # the pump takes this one and waits on the far end's track
    await settle()
    for _ in range(BRIDGE_QUEUE + 5):  # five more than the queue holds: the oldest are dropped
        caller.capture(1)
    to_far.open.set()
    await settle(100)
    await bridge.close()
    assert len(to_far.levels) == 1 + BRIDGE_QUEUE and set(to_far.levels) == {0}
    assert bridge.muted_frames == bridge.frames[0] == 1 + BRIDGE_QUEUE


def test_muting_holds_over_after_sensitive_input_ends() -> None:
    sensitive = [True]
    muting = Muting(lambda: sensitive[0])
    assert muting.capture(pcm(5), 10.0) == Captured(pcm(0), True)
    sensitive[0] = False
    assert muting.capture(pcm(5), 10.0 + HOLD_OVER - 0.01).muted
    assert muting.capture(pcm(5), 10.0 + HOLD_OVER) == Captured(pcm(5), False)
    assert not Muting(lambda: False).capture(pcm(5), 0.0).muted  # never sensitive: never muted


async def test_the_far_end_hanging_up_ends_the_bridge_and_gives_the_callers_audio_back() -> None:
    clock = VirtualClock()
    caller = Caller(clock)
    to_far = Heard()
    bridge = Bridge(caller_frames(caller.listen, Muting(lambda: False)), to_far, frames([7]), Heard())
    await settle()
    assert bridge.ended and caller.stopped == 1 and caller.sink is None
    await bridge.close()


async def test_close_stops_both_directions_and_closes_the_sources() -> None:
    closed: list[str] = []

    async def side(name: str) -> AsyncGenerator[Pcm, None]:
        try:
            async for pcm in frames([1], then_wait=True):
                yield pcm
        finally:
            closed.append(name)

    async def captured(name: str) -> AsyncGenerator[Captured, None]:
        async for pcm in side(name):
            yield Captured(pcm, False)

    to_far, to_caller = Heard(), Heard()
    bridge = Bridge(captured("caller"), to_far, side("far"), to_caller)
    for _ in range(5):
        await asyncio.sleep(0)
    assert not bridge.ended
    await bridge.close()
    assert bridge.ended
    assert sorted(closed) == ["caller", "far"] and to_far.levels == [1] and to_caller.levels == [1]
