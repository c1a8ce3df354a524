"""What the test phone heard: decode a recorded RTP stream into PCM, find sine-tone prompts by
frequency over time (Goertzel), and list the RFC 4733 key presses received, in order.

Why tones: a test flow's prompts are distinct sine tones (one frequency per prompt), so "the
caller heard the menu prompt after pressing 1" becomes "a 660 Hz segment starts after the key",
checked on the real decoded audio with no speech recogniser.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .rtp_packets import (
    PCMU_RATE,
    PT_PCMU,
    PT_TELEPHONE_EVENT,
    RtpPacket,
    TelephoneEvent,
    ulaw_decode,
)
from .rtp_pcap import UdpRecord, read_pcap


@dataclass(frozen=True)
class ReceivedPacket:
    """An RTP packet as recorded: arrival time (the recorder's `time.time()`) and sender."""

    arrival: float
    src: tuple[str, int]
    rtp: RtpPacket


@dataclass(frozen=True)
class ReceivedDigit:
    """One RFC 4733 event (all packets sharing an SSRC and RTP timestamp)."""

    key: str
    rtp_timestamp: int
    first_arrival: float
    duration_ms: float
    ended: bool
    packets: int


@dataclass(frozen=True)
class ToneSegment:
    """A stretch of audio dominated by one of the expected frequencies."""

    hz: float
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Recording:
    """The RTP packets one recorder received, in arrival order; `skipped` counts datagrams that
    were not RTP (so a test can tell "nothing arrived" from "garbage arrived")."""

    packets: list[ReceivedPacket] = field(default_factory=list)
    skipped: int = 0

    @staticmethod
    def from_records(records: Iterable[UdpRecord]) -> Recording:
        rec = Recording()
        for r in records:
            try:
                rec.packets.append(ReceivedPacket(r.time, r.src, RtpPacket.parse(r.payload)))
            except ValueError:
                rec.skipped += 1
        return rec

    @staticmethod
    def load(path: Path) -> Recording:
        return Recording.from_records(read_pcap(path))

    def payload_types(self) -> dict[int, int]:
        """How many packets of each payload type arrived (for failure messages)."""
        counts: dict[int, int] = {}
        for p in self.packets:
            counts[p.rtp.payload_type] = counts.get(p.rtp.payload_type, 0) + 1
        return counts

    def audio(self, payload_type: int = PT_PCMU) -> tuple[list[int], list[float]]:
        """Decoded PCMU samples in arrival order and each sample's time (its packet's arrival
        plus its offset in the packet).
        Each packet's samples are placed at its arrival, so silence the far end did not send
        does not shift later tones; duplicates (same SSRC and sequence) are dropped."""
        seen: set[tuple[int, int]] = set()
        samples: list[int] = []
        times: list[float] = []
        for p in self.packets:
            if p.rtp.payload_type != payload_type:
                continue
            ident = (p.rtp.ssrc, p.rtp.sequence)
            if ident in seen:
                continue
            seen.add(ident)
            samples.extend(ulaw_decode(p.rtp.payload))
            times.extend(p.arrival + k / PCMU_RATE for k in range(len(p.rtp.payload)))
        return samples, times

    def digits(self, payload_type: int = PT_TELEPHONE_EVENT) -> list[ReceivedDigit]:
        """RFC 4733 events in order of first arrival: one entry per (SSRC, RTP timestamp), which
        is how a receiver tells a new press from a retransmission."""
        groups: dict[tuple[int, int], list[ReceivedPacket]] = {}
        for p in self.packets:
            if p.rtp.payload_type == payload_type and len(p.rtp.payload) >= 4:
                groups.setdefault((p.rtp.ssrc, p.rtp.timestamp), []).append(p)
        out: list[ReceivedDigit] = []
        for (_, ts), pkts in groups.items():
            events = [TelephoneEvent.parse(p.rtp.payload) for p in pkts]
            out.append(ReceivedDigit(
                key=events[0].key,
                rtp_timestamp=ts, first_arrival=min(p.arrival for p in pkts),
                duration_ms=max(e.duration for e in events) * 1000 / PCMU_RATE,
                ended=any(e.end for e in events), packets=len(pkts)))
        out.sort(key=lambda d: d.first_arrival)
        return out

    def digit_string(self, payload_type: int = PT_TELEPHONE_EVENT) -> str:
        return "".join(d.key for d in self.digits(payload_type))


def goertzel_ratio(samples: Sequence[int], hz: float, rate: int = PCMU_RATE) -> float:
    """Share (0..1) of the block's energy at `hz`: 1.0 for a pure sine at that frequency."""
    n = len(samples)
    if n == 0:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    energy = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
        energy += x * x
    if energy == 0:
        return 0.0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return min(1.0, 2 * power / (n * energy))


def detect_tones(samples: Sequence[int], times: Sequence[float], freqs: Sequence[float], *,
                 window: int = 320, min_ratio: float = 0.6, min_rms: float = 100.0,
                 min_seconds: float = 0.1) -> list[ToneSegment]:
    """Segments where one of `freqs` dominates, in time order. A window (default 40 ms) counts
    for a frequency when it holds at least `min_ratio` of the window's energy and the window is
    louder than `min_rms`; runs of windows shorter than `min_seconds` are dropped (clicks).
    Resolution: a window straddling a boundary counts for neither side, so a segment's start
    and end are exact to about one window."""
    labels: list[tuple[float | None, float, float]] = []
    for start in range(0, len(samples) - window + 1, window):
        block = samples[start:start + window]
        rms = math.sqrt(sum(x * x for x in block) / window)
        best: float | None = None
        if rms >= min_rms:
            ratios = {f: goertzel_ratio(block, f) for f in freqs}
            f, r = max(ratios.items(), key=lambda kv: kv[1])
            best = f if r >= min_ratio else None
        labels.append((best, times[start], times[start + window - 1] + 1 / PCMU_RATE))
    segments: list[ToneSegment] = []
    for hz, t0, t1 in labels:
        if hz is not None and segments and segments[-1].hz == hz and t0 - segments[-1].end < 0.1:
            segments[-1] = ToneSegment(hz, segments[-1].start, t1)
        elif hz is not None:
            segments.append(ToneSegment(hz, t0, t1))
    return [s for s in segments if s.seconds >= min_seconds]


def tone_sequence(segments: Sequence[ToneSegment]) -> list[float]:
    """The frequencies heard, in order, with consecutive repeats merged."""
    out: list[float] = []
    for s in segments:
        if not out or out[-1] != s.hz:
            out.append(s.hz)
    return out
