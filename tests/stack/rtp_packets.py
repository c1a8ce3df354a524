"""RTP, RFC 4733 telephone-event and G.711 mu-law (PCMU), packed by hand with `struct`.

Why by hand: the test phone must control every RTP field (sequence, timestamp, marker, the
RFC 4733 end bit and its three retransmissions) because LiveKit SIP drops a DTMF packet whose
timestamp equals the previous event's. No packet library gives that control more simply, and
the stdlib `audioop` (PCMU) is deprecated in 3.11 and gone in 3.13.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PT_PCMU = 0
PT_TELEPHONE_EVENT = 101
PCMU_RATE = 8000

# RFC 4733 section 3.2: events 0-9 are the digits, 10 '*', 11 '#', 12-15 'A'-'D'.
DTMF_EVENTS: dict[str, int] = {**{str(d): d for d in range(10)}, "*": 10, "#": 11,
                               "A": 12, "B": 13, "C": 14, "D": 15}
EVENT_KEYS: dict[int, str] = {code: key for key, code in DTMF_EVENTS.items()}

_RTP_HEADER = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")
_BIAS = 0x84
_CLIP = 32635


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet (no CSRC, no extension: neither the phone nor LiveKit SIP uses them)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def pack(self) -> bytes:
        byte1 = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        return _RTP_HEADER.pack(0x80, byte1, self.sequence & 0xFFFF,
                                self.timestamp & 0xFFFFFFFF, self.ssrc) + self.payload

    @staticmethod
    def parse(data: bytes) -> RtpPacket:
        """Parse a datagram; raises ValueError for anything that is not RTP version 2."""
        if len(data) < _RTP_HEADER.size:
            raise ValueError(f"RTP packet too short ({len(data)} bytes)")
        b0, b1, seq, ts, ssrc = _RTP_HEADER.unpack_from(data)
        if b0 >> 6 != 2:
            raise ValueError(f"not RTP version 2 (first byte 0x{b0:02x})")
        offset = _RTP_HEADER.size + 4 * (b0 & 0x0F)
        if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in words
            if len(data) < offset + 4:
                raise ValueError("RTP extension header truncated")
            (words,) = struct.unpack_from("!H", data, offset + 2)
            offset += 4 + 4 * words
        end = len(data)
        if b0 & 0x20 and end > offset:  # padding: last byte is the pad count
            end -= data[-1]
        return RtpPacket(b1 & 0x7F, seq, ts, ssrc, bytes(data[offset:end]), bool(b1 & 0x80))


@dataclass(frozen=True)
class TelephoneEvent:
    """An RFC 4733 telephone-event payload: event code, end bit, volume (-dBm0), duration."""

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def key(self) -> str:
        return EVENT_KEYS.get(self.event, f"?{self.event}")

    def pack(self) -> bytes:
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | (self.volume & 0x3F),
                           self.duration & 0xFFFF)

    @staticmethod
    def parse(payload: bytes) -> TelephoneEvent:
        if len(payload) < _EVENT.size:
            raise ValueError(f"telephone-event payload too short ({len(payload)} bytes)")
        event, flags, duration = _EVENT.unpack_from(payload)
        return TelephoneEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


def _ulaw_encode_one(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, _CLIP) + _BIAS
    exponent = max(0, (magnitude >> 7).bit_length() - 1)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_decode_one(byte: int) -> int:
    u = ~byte & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = ((((u & 0x0F) << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if u & 0x80 else magnitude


_ULAW_DECODE = [_ulaw_decode_one(b) for b in range(256)]


def ulaw_encode(samples: list[int]) -> bytes:
    """16-bit linear samples to G.711 mu-law bytes."""
    return bytes(_ulaw_encode_one(s) for s in samples)


def ulaw_decode(data: bytes) -> list[int]:
    """G.711 mu-law bytes to 16-bit linear samples."""
    table = _ULAW_DECODE
    return [table[b] for b in data]


ULAW_SILENCE = 0xFF
