"""Audio fed in chunks of any size (network packets), cut into the whole frames a detector
judges one at a time (`ivrkit.voice.amd`, `ivrkit.voice.beep`). `ivrkit.voice.audio.frames`
cuts one whole buffer; this keeps what is left of a frame for the next chunk. Plain bytes:
the AMD detector needs no numpy.
"""

from __future__ import annotations

__all__ = ["FrameCutter"]


class FrameCutter:
    """Cuts mono 16-bit PCM into whole frames of `frame_ms`. The rate may not change mid-stream:
    a detector counts its times in frames."""

    __slots__ = ("frame_ms", "rate", "_rest")

    def __init__(self, frame_ms: int = 20) -> None:
        self.frame_ms = frame_ms
        self.rate = 0  # set by the first chunk
        self._rest = b""

    def cut(self, samples: bytes, sample_rate: int) -> list[bytes]:
        """The whole frames `samples` completes, in order (none if it completes no frame)."""
        if self.rate and sample_rate != self.rate:
            raise ValueError(f"the audio changed rate from {self.rate} to {sample_rate} Hz mid-analysis")
        if sample_rate <= 0 or sample_rate * self.frame_ms % 1000:
            raise ValueError(f"{sample_rate} Hz does not split into whole {self.frame_ms} ms frames")
        self.rate = sample_rate
        step = sample_rate * self.frame_ms // 1000 * 2
        data = self._rest + samples
        whole = len(data) - len(data) % step
        self._rest = data[whole:]
        return [data[start:start + step] for start in range(0, whole, step)]
