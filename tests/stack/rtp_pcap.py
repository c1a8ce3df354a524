"""pcap files of RTP: the test phone's outgoing audio with RFC 4733 key presses, and recordings.

Why a pcap: SIPp can only send media by replaying a pcap (`play_pcap_audio`), keeping every RTP
field as written and the packets' relative times. SIPp's own `play_dtmf` and its bundled DTMF
pcaps reuse one RTP timestamp per digit, which LiveKit SIP drops as retransmits, so the phone
writes its own: continuous 20 ms PCMU packets (no 15 s media timeout) with each key replacing
the audio for its duration, each key with its own timestamp (= its start on the media clock),
a marked start packet, growing durations and the end packet sent three times (RFC 4733 2.5.1.4).

A phone that sends its keys in-band (`dtmf="inband"`) puts the key's DTMF tone pair into its
PCMU audio instead (`ivrkit.voice.dtmf_tones.dtmf_tone`), as a trunk without telephone-event
does; `dtmf="both"` sends the tone in the audio *and* the RFC 4733 events for the same press,
as some trunks do.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ivrkit.voice.dtmf_tones import dtmf_tone

from .rtp_packets import (
    DTMF_EVENTS,
    PCMU_RATE,
    PT_PCMU,
    PT_TELEPHONE_EVENT,
    ULAW_SILENCE,
    RtpPacket,
    TelephoneEvent,
    ulaw_encode,
)

FRAME_MS = 20
FRAME_SAMPLES = PCMU_RATE * FRAME_MS // 1000

_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")
_PCAP_MAGIC = 0xA1B2C3D4
_LINKTYPE_ETHERNET = 1


@dataclass(frozen=True)
class UdpRecord:
    """One UDP datagram in a pcap: when (seconds, pcap clock), from where, to where, what."""

    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def _ip_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    """Ethernet + IPv4 + UDP around payload. The UDP checksum is 0 (optional in IPv4; SIPp
    recomputes it anyway when it rewrites the ports)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes(int(p) for p in src[0].split(".")),
                     bytes(int(p) for p in dst[0].split(".")))
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp


class PcapWriter:
    """Appends UDP datagrams to a classic (microsecond, Ethernet) pcap, flushing each record so
    a reader sees a recording while it is still being written."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._file.write(_PCAP_HEADER.pack(_PCAP_MAGIC, 2, 4, 0, 0, 65535, _LINKTYPE_ETHERNET))
        self._file.flush()

    def write(self, record: UdpRecord) -> None:
        frame = _frame(record.src, record.dst, record.payload)
        usec_total = round(record.time * 1_000_000)
        self._file.write(_PCAP_RECORD.pack(usec_total // 1_000_000, usec_total % 1_000_000,
                                           len(frame), len(frame)) + frame)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def write_pcap(path: Path, records: Iterable[UdpRecord]) -> None:
    writer = PcapWriter(path)
    try:
        for record in records:
            writer.write(record)
    finally:
        writer.close()


def read_pcap(path: Path) -> list[UdpRecord]:
    """Read the UDP/IPv4 datagrams of an Ethernet pcap written by `PcapWriter` (or tcpdump).
    A record cut short at the end (file still being written) is ignored."""
    data = Path(path).read_bytes()
    if len(data) < _PCAP_HEADER.size:
        raise ValueError(f"{path}: not a pcap file (only {len(data)} bytes)")
    magic, _, _, _, _, _, linktype = _PCAP_HEADER.unpack_from(data)
    if magic != _PCAP_MAGIC or linktype != _LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: expected a microsecond Ethernet pcap (magic 0x{magic:08x}, "
                         f"link type {linktype})")
    out: list[UdpRecord] = []
    pos = _PCAP_HEADER.size
    while pos + _PCAP_RECORD.size <= len(data):
        sec, usec, caplen, _ = _PCAP_RECORD.unpack_from(data, pos)
        pos += _PCAP_RECORD.size
        if pos + caplen > len(data):
            break
        frame = data[pos:pos + caplen]
        pos += caplen
        if frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ihl = (frame[14] & 0x0F) * 4
        udp = 14 + ihl
        sport, dport, length, _ = struct.unpack_from("!HHHH", frame, udp)
        src_ip = ".".join(str(b) for b in frame[26:30])
        dst_ip = ".".join(str(b) for b in frame[30:34])
        out.append(UdpRecord(sec + usec / 1e6, (src_ip, sport), (dst_ip, dport),
                             frame[udp + 8:udp + length]))
    return out


@dataclass(frozen=True)
class KeyPress:
    """A key script entry: at `at` seconds after media start, press `keys` one after another."""

    at: float
    keys: str


def _key_events(script: Sequence[KeyPress | tuple[float, str]], tone_ms: int,
                gap_ms: int) -> dict[int, tuple[str, int]]:
    """Map the starting 20 ms frame of each key to (key, frames). Raises ValueError naming the
    entry for an unknown key, a time off the 20 ms grid, or keys that overlap."""
    if tone_ms % FRAME_MS or gap_ms % FRAME_MS or tone_ms < FRAME_MS:
        raise ValueError(f"tone_ms={tone_ms} and gap_ms={gap_ms} must be multiples of "
                         f"{FRAME_MS} ms (tone at least one frame)")
    tone_frames, gap_frames = tone_ms // FRAME_MS, gap_ms // FRAME_MS
    starts: dict[int, tuple[str, int]] = {}
    busy_until = -1
    for index, entry in enumerate(sorted((KeyPress(*e) if isinstance(e, tuple) else e
                                          for e in script), key=lambda k: k.at)):
        frame = round(entry.at * 1000 / FRAME_MS)
        for key in entry.keys:
            code = DTMF_EVENTS.get(key.upper())
            if code is None:
                raise ValueError(f"key script entry {index} ({entry.at}s, {entry.keys!r}): "
                                 f"{key!r} is not a DTMF key (0-9 * # A-D)")
            if frame < busy_until:
                raise ValueError(f"key script entry {index} ({entry.at}s, {entry.keys!r}) "
                                 f"overlaps the previous key; space entries by at least "
                                 f"{(tone_ms + gap_ms) / 1000}s per key")
            starts[frame] = (key.upper(), tone_frames)
            frame += tone_frames + gap_frames
            busy_until = frame - gap_frames
    return starts


def phone_packets(script: Sequence[KeyPress | tuple[float, str]], duration: float, *,
                  tone_hz: float | None = None, tone_level: int = 1000,
                  tone_ms: int = 100, gap_ms: int = 100, ssrc: int = 0x1F2E3D4C,
                  first_sequence: int = 1000, first_timestamp: int = 160_000,
                  volume: int = 10, dtmf: Literal["rfc4733", "inband", "both"] = "rfc4733",
                  dtmf_dbfs: float = -12.0) -> list[tuple[float, RtpPacket]]:
    """The phone's RTP stream for `duration` seconds as (send time, packet): PCMU frames of
    silence (or a low `tone_hz` sine) with each key of `script` sent as RFC 4733 events, as
    tones in the audio (`dtmf="inband"`, each tone at `dtmf_dbfs`), or both."""
    events = _key_events(script, tone_ms, gap_ms)
    frames = math.ceil(duration * 1000 / FRAME_MS)
    packets: list[tuple[float, RtpPacket]] = []
    seq = first_sequence
    frame = 0
    first_audio = True
    while frame < frames:
        at = frame * FRAME_MS / 1000
        timestamp = first_timestamp + frame * FRAME_SAMPLES
        if frame in events:
            key, n = events[frame]
            code = DTMF_EVENTS[key]
            tone = dtmf_tone(key, n * FRAME_MS / 1000, sample_rate=PCMU_RATE, level_dbfs=dtmf_dbfs).array()
            for i in range(n):
                if dtmf != "rfc4733":
                    chunk = tone[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES].tolist()
                    packets.append((at + i * FRAME_MS / 1000, RtpPacket(
                        PT_PCMU, seq, timestamp + i * FRAME_SAMPLES, ssrc, ulaw_encode(chunk), marker=first_audio)))
                    first_audio = False
                    seq += 1
                if dtmf == "inband":
                    continue
                end = i == n - 1
                payload = TelephoneEvent(code, end, volume, (i + 1) * FRAME_SAMPLES).pack()
                packets.append((at + i * FRAME_MS / 1000, RtpPacket(
                    PT_TELEPHONE_EVENT, seq, timestamp, ssrc, payload, marker=i == 0)))
                seq += 1
            if dtmf == "inband":
                frame += n
                continue
            for retransmit in (1, 2):  # the end packet three times in all, 1 ms apart
                packets.append((at + (n - 1) * FRAME_MS / 1000 + retransmit / 1000, RtpPacket(
                    PT_TELEPHONE_EVENT, seq, timestamp, ssrc, payload)))
                seq += 1
            frame += n
            continue
        if tone_hz is None:
            payload = bytes([ULAW_SILENCE]) * FRAME_SAMPLES
        else:
            base = frame * FRAME_SAMPLES
            payload = ulaw_encode([round(tone_level * math.sin(2 * math.pi * tone_hz *
                                                                (base + n) / PCMU_RATE))
                                   for n in range(FRAME_SAMPLES)])
        packets.append((at, RtpPacket(PT_PCMU, seq, timestamp, ssrc, payload,
                                      marker=first_audio)))
        first_audio = False
        seq += 1
        frame += 1
    return packets


def write_phone_pcap(path: Path, script: Sequence[KeyPress | tuple[float, str]],
                     duration: float, **options: object) -> Path:
    """Write `phone_packets(script, duration, **options)` as a pcap SIPp can replay. The pcap's
    addresses and ports are placeholders: SIPp rewrites them to the call's media addresses."""
    packets = phone_packets(script, duration, **options)  # type: ignore[arg-type]
    write_pcap(path, (UdpRecord(at, ("127.0.0.1", 6000), ("127.0.0.1", 6000), p.pack())
                      for at, p in packets))
    return path


def write_audio_pcap(path: Path, audio: bytes, duration: float, *, ssrc: int = 0x2A3B4C5D,
                     first_sequence: int = 3000, first_timestamp: int = 240_000) -> Path:
    """A far end that speaks: `audio` (8 kHz mono 16-bit PCM, e.g. a rendered voicemail
    greeting) as PCMU frames from the start, then silence up to `duration` seconds, as a pcap
    SIPp can replay (its addresses are placeholders SIPp rewrites)."""
    samples = struct.unpack(f"<{len(audio) // 2}h", audio[:len(audio) // 2 * 2])
    frames = math.ceil(duration * 1000 / FRAME_MS)
    records = []
    for frame in range(frames):
        chunk = list(samples[frame * FRAME_SAMPLES:(frame + 1) * FRAME_SAMPLES])
        payload = ulaw_encode(chunk + [0] * (FRAME_SAMPLES - len(chunk))) if chunk else bytes([ULAW_SILENCE]) * FRAME_SAMPLES
        packet = RtpPacket(PT_PCMU, first_sequence + frame, first_timestamp + frame * FRAME_SAMPLES, ssrc, payload,
                           marker=frame == 0)
        records.append(UdpRecord(frame * FRAME_MS / 1000, ("127.0.0.1", 6000), ("127.0.0.1", 6000), packet.pack()))
    write_pcap(path, records)
    return path
