"""The bridge's pumps, fed by real async generators of PCM: each direction carries its side's
frames in order, the caller's audio reaches the far end as silence while input is sensitive, and
the bridge ends with either side or at `close()`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from ivrkit.livekit.bridge import Bridge
from ivrkit.voice.audio import Pcm


async def frames(values: list[int], *, then_wait: bool = False) -> AsyncGenerator[Pcm, None]:
    for v in values:
        yield Pcm(v.to_bytes(2, "little", signed=True) * 160, 8000)
        await asyncio.sleep(0)
    if then_wait:
        await asyncio.Event().wait()


class Heard:
    def __init__(self) -> None:
        self.levels: list[int] = []

    async def __call__(self, pcm: Pcm) -> None:
        self.levels.append(int.from_bytes(pcm.samples[:2], "little", signed=True))


async def test_each_side_hears_the_other_and_the_caller_is_silent_while_sensitive() -> None:
    sensitive = [False]
    to_far, to_caller = Heard(), Heard()

    async def caller() -> AsyncGenerator[Pcm, None]:
        for v in (100, 200, 300, 400):
            sensitive[0] = v in (200, 300)  # a PIN collect runs while these two frames come
            yield Pcm(v.to_bytes(2, "little", signed=True) * 160, 8000)
            await asyncio.sleep(0)

    bridge = Bridge(caller(), to_far, frames([7, 8, 9]), to_caller, muted=lambda: sensitive[0])
    for _ in range(20):
        await asyncio.sleep(0)
    await bridge.close()
    assert to_far.levels == [100, 0, 0, 400]
    assert to_caller.levels == [7, 8, 9]
    assert bridge.frames == [4, 3] and bridge.muted_frames == 2


async def test_close_stops_both_directions_and_closes_the_sources() -> None:
    closed: list[str] = []

    async def side(name: str) -> AsyncGenerator[Pcm, None]:
        try:
            async for pcm in frames([1], then_wait=True):
                yield pcm
        finally:
            closed.append(name)

    to_far, to_caller = Heard(), Heard()
    bridge = Bridge(side("caller"), to_far, side("far"), to_caller, muted=lambda: False)
    for _ in range(5):
        await asyncio.sleep(0)
    await bridge.close()
    assert sorted(closed) == ["caller", "far"] and to_far.levels == [1] and to_caller.levels == [1]
