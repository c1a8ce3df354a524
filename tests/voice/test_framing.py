"""FrameCutter: packets of any size become whole frames, nothing lost, nothing invented."""

from __future__ import annotations

import pytest

from ivrkit.voice.framing import FrameCutter


def test_packets_of_any_size_become_whole_frames_in_order_with_nothing_lost() -> None:
    audio = bytes(range(256)) * 40  # 10,240 bytes: 16 frames of 20 ms at 16 kHz (640 bytes each)
    cutter = FrameCutter(20)
    frames: list[bytes] = []
    start = 0
    for size in (1, 639, 641, 3, 1000, 7, 2000, 4000):  # odd sizes, some completing no frame
        frames += cutter.cut(audio[start:start + size], 16000)
        start += size
    frames += cutter.cut(audio[start:], 16000)
    assert all(len(f) == 640 for f in frames)
    assert b"".join(frames) == audio  # every byte once, in order, none invented
    assert cutter.cut(b"\0" * 639, 16000) == []  # a part frame waits for the rest
    assert cutter.cut(b"\0", 16000) == [b"\0" * 640]


def test_a_rate_that_changes_or_does_not_split_into_frames_is_refused() -> None:
    cutter = FrameCutter(20)
    cutter.cut(b"\0" * 320, 8000)
    with pytest.raises(ValueError, match="changed rate from 8000 to 16000 Hz"):
        cutter.cut(b"\0" * 640, 16000)
    with pytest.raises(ValueError, match="11025 Hz does not split into whole 20 ms frames"):
        FrameCutter(20).cut(b"", 11025)
