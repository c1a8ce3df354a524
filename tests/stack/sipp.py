"""The test phone: SIPp places one call, replays generated RTP (audio + RFC 4733 keys), and an
`RtpRecorder` hears what comes back.

Why SIPp: it is a real SIP user agent (Debian `sip-tester`) that LiveKit SIP treats like any
trunk. Why the scenario is generated here: the call's numbers, hold time and hang-up side vary per
test, and two SIPp traps are handled in one place — `[media_port]` must sit on a line containing
"audio" (that sets the pcap's source port), and SIPp cannot record, so the SDP's audio port is
`[media_port+10]`, where the recorder listens (SIPp itself binds media_port and media_port+2).

Usage (inside the harness's namespace, LiveKit SIP at `sip_host:sip_port`)::

    phone = SippPhone(PhoneCall(number="+15550001", sip_host=ns.address, sip_port=5060,
                                local_ip=ns.address, keys=[(1.0, "1"), (3.0, "1234#")],
                                hold=8.0), workdir=tmp_path, prefix=ns.exec_prefix())
    result = phone.wait()          # SippResult: exit code, SIP responses, who hung up
    heard = result.recording       # Recording: .digits(), .audio() -> detect_tones(...)

`SippFarEnd` is the other direction: SIPp as the far end of an outbound dial (LiveKit SIP's
outbound trunk points at it). It answers, rejects or just rings, and its recorder hears the
RFC 4733 keys the flow sends (`send_dtmf`) to what it dialled.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

from .rtp_analysis import Recording
from .rtp_pcap import KeyPress, write_audio_pcap, write_phone_pcap
from .rtp_recorder import RtpRecorder

RECORDER_OFFSET = 10


@dataclass(frozen=True)
class PhoneCall:
    """One call to place. `hold` is how long the phone stays on the line after the answer:
    with hangup="phone" it then sends BYE; with hangup="far" it waits up to `hold` seconds for
    the far end's BYE (and fails the call if none comes); with hangup="transfer" it waits up to
    `hold` seconds for a REFER (a transfer, as a SIP trunk sees it), accepts it (202), reports
    `transfer_status` in a NOTIFY sipfrag as the trunk would after dialling the target, then
    hangs up with BYE (after 2 s if the status is not 2xx: the call went on)."""

    number: str
    sip_host: str
    local_ip: str
    sip_port: int = 5060
    caller: str = "+15550100"
    keys: Sequence[KeyPress | tuple[float, str]] = ()
    hold: float = 10.0
    hangup: Literal["phone", "far", "transfer"] = "phone"
    answer_timeout: float = 20.0
    local_sip_port: int = 5070
    media_port: int = 16000
    tone_hz: float | None = None
    offer_telephone_event: bool = True
    transfer_status: str = "200 OK"
    dtmf: Literal["rfc4733", "inband", "both"] = "rfc4733"  # how `keys` are sent (rtp_pcap.phone_packets)

    @property
    def recorder_port(self) -> int:
        return self.media_port + RECORDER_OFFSET


@dataclass(frozen=True)
class SipMessage:
    direction: Literal["sent", "received"]
    first_line: str
    text: str


@dataclass
class SippResult:
    """How the call went, from SIPp's exit code and message trace, plus the recording."""

    exit_code: int
    messages: list[SipMessage]
    recording: Recording
    workdir: Path
    timed_out: bool = False
    notes: list[str] = field(default_factory=list)
    role: Literal["phone", "far end"] = "phone"

    @property
    def invite(self) -> SipMessage | None:
        """The INVITE: sent by a phone, received by a far end."""
        want = "sent" if self.role == "phone" else "received"
        return next((m for m in self.messages if m.direction == want and m.first_line.startswith("INVITE ")), None)

    @property
    def invite_responses(self) -> list[int]:
        """Status codes of the responses to the INVITE, in order (100, 180, ..., 200): those a
        phone received, or those a far end sent."""
        want = "received" if self.role == "phone" else "sent"
        out = []
        for m in self.messages:
            if m.direction == want and m.first_line.startswith("SIP/2.0 ") and \
                    re.search(r"^CSeq:\s*\d+\s+INVITE", m.text, re.M | re.I):
                out.append(int(m.first_line.split()[1]))
        return out

    def _from_invite(self, pattern: str) -> str:
        """The first group of `pattern` in the INVITE's text, or "" (no INVITE, no match)."""
        invite = self.invite
        found = re.search(pattern, invite.text, re.M | re.I) if invite else None
        return found.group(1) if found else ""

    @property
    def call_id(self) -> str:
        """The Call-ID of the INVITE (LiveKit SIP logs it as `sipCallID`)."""
        return self._from_invite(r"^Call-ID:\s*(\S+)")

    @property
    def called_user(self) -> str:
        """The user part of the INVITE's request URI: the number dialled (`sip:USER@host`)."""
        return self._from_invite(r"\AINVITE\s+sips?:([^@;>\s]+)@")

    @property
    def calling_user(self) -> str:
        """The user part of the INVITE's From: the caller id (an outbound trunk's number)."""
        return self._from_invite(r"^(?:From|f):[^\n]*?sips?:([^@;>\s]+)@")

    @property
    def cancelled(self) -> bool:
        """A far end got CANCEL: the caller gave up while it rang."""
        return any(m.direction == "received" and m.first_line.startswith("CANCEL ") for m in self.messages)

    @property
    def refer_to(self) -> str | None:
        """The Refer-To of a REFER the phone received (a transfer), or None."""
        for m in self.messages:
            if m.direction == "received" and m.first_line.startswith("REFER "):
                found = re.search(r"^(?:Refer-To|r):\s*(.+?)\s*$", m.text, re.M | re.I)
                return found.group(1) if found else ""
        return None

    @property
    def answered(self) -> bool:
        return 200 in self.invite_responses

    @property
    def bye_from(self) -> Literal["phone", "far", None]:
        """Who sent the BYE: "phone" is this SIPp (a far end too), "far" the other side."""
        for m in self.messages:
            if m.first_line.startswith("BYE "):
                return "phone" if m.direction == "sent" else "far"
        return None

    def describe(self) -> str:
        """One paragraph for assertion messages: what SIP saw and what RTP arrived."""
        codes = self.invite_responses
        rec = self.recording
        if self.role == "far end":
            if self.invite is None:
                sip = ("no INVITE arrived (the outbound trunk's address is not this far end's, "
                       "or the dial never reached LiveKit SIP)")
            else:
                sip = (f"INVITE to {self.called_user!r} from {self.calling_user!r}, answered with "
                       f"{codes}{'; CANCEL received' if self.cancelled else ''}"
                       + (f"; BYE sent by {'the far end' if self.bye_from == 'phone' else 'LiveKit SIP' if self.bye_from else 'nobody'}"
                          if 200 in codes else ""))
        elif not codes:
            sip = "no response to the INVITE (LiveKit SIP not listening, or wrong address/port)"
        elif 200 not in codes and codes[-1] < 200:
            sip = (f"INVITE got {codes} and no final answer: LiveKit SIP matched no dispatch "
                   f"rule (it drops the call silently), or nobody published an audio track "
                   f"in the room (it answers only once it can subscribe to one)")
        elif 200 not in codes:
            sip = f"INVITE rejected with {codes[-1]} (all responses {codes})"
        else:
            sip = f"answered (responses {codes}); BYE sent by {self.bye_from or 'nobody'}"
        return (f"SIPp exit {self.exit_code}{' (timed out)' if self.timed_out else ''}: {sip}; "
                f"RTP heard: {len(rec.packets)} packets, payload types {rec.payload_types()}, "
                f"digits {rec.digit_string()!r}; logs in {self.workdir}"
                + "".join(f"; {n}" for n in self.notes))


def _scenario(call: PhoneCall, pcap: Path) -> str:
    number, caller = escape(call.number), escape(call.caller)
    fmts = "0 101" if call.offer_telephone_event else "0"
    te = ("      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-15\n"
          if call.offer_telephone_event else "")
    hold_ms = round(call.hold * 1000)
    invite = f"""
      INVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "ivrkit test phone" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]ivrkit[call_number]
      To: <sip:{number}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{caller}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=ivrkit 1 1 IN IP[local_ip_type] [local_ip]
      s=ivrkit test phone
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port+{RECORDER_OFFSET}] RTP/AVP {fmts}
      a=rtpmap:0 PCMU/8000
{te}      a=ptime:20
      a=sendrecv
"""
    ack = """
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 1 ACK
      Contact: <sip:[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
"""
    if call.hangup == "phone":
        ending = f"""
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 2 BYE
      Contact: <sip:[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv response="200" crlf="true"/>
"""
    elif call.hangup == "transfer":
        ok = call.transfer_status.startswith("2")
        ending = f"""
  <recv request="REFER" timeout="{hold_ms}">
    <action><ereg regexp="([0-9]+)" search_in="hdr" header="CSeq:" assign_to="refer_cseq"/></action>
  </recv>
  <send><![CDATA[
      SIP/2.0 202 Accepted
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port]>
      Content-Length: 0
  ]]></send>
  <send retrans="500"><![CDATA[
      NOTIFY [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From:[$our_from]
      To:[$their_to]
      Call-ID: [call_id]
      CSeq: 2 NOTIFY
      Contact: <sip:[local_ip]:[local_port]>
      Event: refer;id=[$refer_cseq]
      Subscription-State: terminated;reason=noresource
      Content-Type: message/sipfrag;version=2.0
      Max-Forwards: 70
      Content-Length: [len]

      SIP/2.0 {escape(call.transfer_status)}
  ]]></send>
  <recv response="200"/>
{"" if ok else '  <pause milliseconds="2000"/>'}
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From:[$our_from]
      To:[$their_to]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Contact: <sip:[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv response="200" crlf="true"/>
"""
    else:
        ending = f"""
  <recv request="BYE" timeout="{hold_ms}"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
  ]]></send>
"""
    # SIPp refuses a variable that is assigned but never used: capture only for "transfer".
    capture = """
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="our_from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="their_to"/>
    </action>
  """ if call.hangup == "transfer" else ""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="ivrkit test phone">
  <send retrans="500"><![CDATA[{invite}  ]]></send>
  <label id="1"/>
  <recv response="100" optional="true" next="1"/>
  <recv response="180" optional="true" next="1"/>
  <recv response="183" optional="true" next="1"/>
  <recv response="200" rrs="true">{capture}</recv>
  <send><![CDATA[{ack}  ]]></send>
  <nop><action><exec play_pcap_audio="{escape(str(pcap))}"/></action></nop>
{ending}
</scenario>
"""


def _parse_messages(path: Path) -> list[SipMessage]:
    if not path.exists():
        return []
    out: list[SipMessage] = []
    blocks = re.split(r"^-{10,}.*$", path.read_text(errors="replace"), flags=re.M)
    for block in blocks:
        m = re.search(r"^\w+ message (sent|received)[^\n]*\n\s*\n?(.*)", block, re.S | re.M)
        if not m:
            continue
        text = m.group(2).strip()
        out.append(SipMessage(m.group(1), text.splitlines()[0] if text else "", text))  # type: ignore[arg-type]
    return out


class _SippRun:
    """One SIPp run and its RTP recorder, phone or far end: the process, its message trace,
    and how the result is collected (`wait`, `stop`)."""

    role: Literal["phone", "far end"] = "phone"
    workdir: Path
    messages: Path
    recorder: RtpRecorder
    timeout: float

    def _spawn(self, argv: Sequence[str]) -> None:
        self._out = open(self.workdir / "sipp-screen.log", "wb")  # noqa: SIM115 - closed in wait()
        self._result: SippResult | None = None
        self.started = time.time()
        self.proc = subprocess.Popen(
            [*argv, "-m", "1", "-l", "1", "-t", "u1", "-nostdin",
             "-timeout", f"{round(self.timeout)}s", "-timeout_error",
             "-trace_msg", "-message_file", str(self.messages),
             "-trace_err", "-error_file", str(self.workdir / "sipp-errors.log")],
            cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=self._out,
            stderr=subprocess.STDOUT)

    def running(self) -> bool:
        return self.proc.poll() is None

    def sip_messages(self) -> list[SipMessage]:
        """The SIP trace so far (SIPp flushes it as it goes)."""
        return _parse_messages(self.messages)

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to end (at most `timeout`, default its own global timeout + 5 s; then
        it is stopped by PID), stop the recorder, and return what happened."""
        if self._result is not None:
            return self._result
        timed_out = False
        try:
            self.proc.wait(timeout if timeout is not None else self.timeout + 5)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        recording = self.recorder.stop() or Recording()
        result = SippResult(self.proc.returncode, _parse_messages(self.messages), recording,
                            self.workdir, timed_out=timed_out, role=self.role)
        errors = self.workdir / "sipp-errors.log"
        if errors.exists() and errors.stat().st_size:
            result.notes.append("SIPp errors: " + " | ".join(
                line.strip() for line in errors.read_text(errors="replace").splitlines()
                if line.strip())[-600:])
        screen = (self.workdir / "sipp-screen.log").read_text(errors="replace")
        if result.exit_code not in (0, 1) or "referenced" in screen or "rror" in screen[-2000:]:
            result.notes.append("SIPp said: " + " | ".join(screen.strip().splitlines()[-3:]))
        self._result = result
        return result

    def stop(self) -> SippResult:
        """Hang up hard (for teardown): stop SIPp and the recorder by PID now. Idempotent."""
        return self.wait(timeout=0)


class SippPhone(_SippRun):
    """Places `call` at once (SIPp and the recorder run under `prefix`, e.g. the namespace's
    `ip netns exec NAME`); `wait()` collects the result. Files (pcap, scenario, SIPp logs,
    recording) stay in `workdir` for post-mortems."""

    def __init__(self, call: PhoneCall, workdir: Path, *, prefix: Sequence[str] = (),
                 sipp: str = "sipp") -> None:
        self.call = call
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Audio runs past the hold time so the far end never hits its media timeout while the
        # BYE is in flight.
        self.pcap = write_phone_pcap(self.workdir / "phone.pcap", list(call.keys),
                                     call.hold + 2.0, tone_hz=call.tone_hz, dtmf=call.dtmf)
        self.scenario = self.workdir / "phone.xml"
        self.scenario.write_text(_scenario(call, self.pcap))
        self.messages = self.workdir / "sipp-messages.log"
        self.recorder = RtpRecorder(call.local_ip, call.recorder_port,
                                    self.workdir / "heard.pcap", prefix=prefix)
        self.timeout = call.answer_timeout + call.hold + 10.0
        self._spawn([*prefix, sipp, f"{call.sip_host}:{call.sip_port}", "-sf", str(self.scenario),
                     "-i", call.local_ip, "-p", str(call.local_sip_port),
                     "-mi", call.local_ip, "-mp", str(call.media_port),
                     "-recv_timeout", f"{round(call.answer_timeout * 1000)}"])


# --- the far end of an outbound dial ---------------------------------------------------------

@dataclass(frozen=True)
class FarEnd:
    """How the far end of an outbound dial (a legacy IVR, someone's phone) takes LiveKit SIP's
    INVITE at `local_ip:sip_port` — the address the outbound trunk points at.

    `answer`: "200" rings for `ring` s, then answers with SDP offering PCMU and telephone-event
    (audio port: the recorder's, so the keys the flow sends are recorded), plays silence and
    waits up to `hold` s for LiveKit SIP's BYE; "486" rejects the call as busy; "ring" rings
    and waits up to `hold` s for a CANCEL, which it accepts (200, then 487 to the INVITE).
    `invite_timeout`: how long it waits for the INVITE at all."""

    local_ip: str
    sip_port: int = 5300
    media_port: int = 17100
    answer: Literal["200", "486", "ring"] = "200"
    hold: float = 20.0
    ring: float = 0.5
    invite_timeout: float = 30.0
    #: what it says once it answered (8 kHz mono 16-bit PCM: a greeting, "Hello?"); then silence
    audio: bytes | None = None

    @property
    def recorder_port(self) -> int:
        return self.media_port + RECORDER_OFFSET


def _far_end_scenario(far: FarEnd, pcap: Path) -> str:
    def response(status: str, extra: str = "", body: str = "", tag: bool = True) -> str:
        """A response to the last request; `tag`: add our To tag (not when it has one)."""
        length = "[len]" if body else "0"
        to_tag = ";tag=[pid]ivrkit[call_number]" if tag else ""
        return f"""
  <send><![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:]{to_tag}
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:far@[local_ip]:[local_port]>{extra}
      Content-Length: {length}
{body}
  ]]></send>"""

    sdp = f"""
      v=0
      o=ivrkit 1 1 IN IP[local_ip_type] [local_ip]
      s=ivrkit test far end
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port+{RECORDER_OFFSET}] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20
      a=sendrecv"""
    invite_ms, hold_ms = round(far.invite_timeout * 1000), round(far.hold * 1000)
    # SIPp refuses a variable that is assigned but never used: capture only for "ring".
    capture = """
    <action><ereg regexp="([0-9]+)" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/></action>
  """ if far.answer == "ring" else ""
    steps = [f'  <recv request="INVITE" timeout="{invite_ms}" crlf="true">{capture}</recv>',
             response("100 Trying", tag=False)]
    # The ACK of a failure answer is waited for briefly, not required: LiveKit SIP v1.8.0 ends
    # its INVITE transaction as it sends CANCEL, so it never ACKs the 487. (SIPp counts a jump
    # to a label at the very end as a failed call, hence the pause after it.)
    final_ack = ('  <recv request="ACK" timeout="2000" ontimeout="99"/>\n  <label id="99"/>\n'
                 '  <pause milliseconds="10"/>')
    if far.answer == "486":
        steps += [response("486 Busy Here"), final_ack]
    elif far.answer == "ring":
        steps += [response("180 Ringing"),
                  f'  <recv request="CANCEL" timeout="{hold_ms}"/>',
                  response("200 OK"),
                  response("487 Request Terminated").replace("[last_CSeq:]", "CSeq: [$invite_cseq] INVITE"),
                  final_ack]
    else:
        steps += [response("180 Ringing"),
                  f'  <pause milliseconds="{round(far.ring * 1000)}"/>',
                  response("200 OK", "\n      Content-Type: application/sdp", sdp).replace("<send>", '<send retrans="500">'),
                  '  <recv request="ACK" crlf="true"/>',
                  f'  <nop><action><exec play_pcap_audio="{escape(str(pcap))}"/></action></nop>',
                  f'  <recv request="BYE" timeout="{hold_ms}"/>',
                  response("200 OK", tag=False)]
    body = "\n".join(steps)
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="ivrkit test far end">
{body}
</scenario>
"""


class SippFarEnd(_SippRun):
    """SIPp waiting for one INVITE as `far` says (under `prefix`, e.g. the namespace's
    `ip netns exec NAME`), with a recorder on its SDP audio port. The constructor returns once
    SIPp listens, so a dial placed afterwards cannot beat it. `wait()` collects the result
    (`SippResult` with role "far end": `called_user`, `invite_responses`, `cancelled`,
    `recording.digits()`)."""

    role: Literal["phone", "far end"] = "far end"

    def __init__(self, far: FarEnd, workdir: Path, *, prefix: Sequence[str] = (),
                 sipp: str = "sipp", start_timeout: float = 10.0) -> None:
        self.far = far
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Audio for the whole hold: LiveKit SIP hangs up a call whose media stops for 15 s.
        self.pcap = (write_phone_pcap(self.workdir / "far-end.pcap", [], far.hold + 2.0) if far.audio is None
                     else write_audio_pcap(self.workdir / "far-end.pcap", far.audio, far.hold + 2.0))
        self.scenario = self.workdir / "far-end.xml"
        self.scenario.write_text(_far_end_scenario(far, self.pcap))
        self.messages = self.workdir / "sipp-messages.log"
        self.recorder = RtpRecorder(far.local_ip, far.recorder_port,
                                    self.workdir / "heard.pcap", prefix=prefix)
        self.timeout = far.invite_timeout + far.hold + 10.0
        self._spawn([*prefix, sipp, "-sf", str(self.scenario), "-i", far.local_ip,
                     "-p", str(far.sip_port), "-mi", far.local_ip, "-mp", str(far.media_port)])
        self._wait_listening(start_timeout)

    def _wait_listening(self, timeout: float) -> None:
        """Until SIPp's UDP socket is bound. `ip netns exec` execs SIPp in place, so the PID's
        /proc/PID/net/udp lists the sockets of the namespace SIPp runs in."""
        port = f":{self.far.sip_port:04X}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            try:
                table = Path(f"/proc/{self.proc.pid}/net/udp").read_text()
            except OSError:
                table = ""
            if any(line.split()[1].endswith(port) and line.split()[3] == "07"
                   for line in table.splitlines()[1:] if len(line.split()) > 3):
                return
            time.sleep(0.05)
        result = self.stop()
        raise RuntimeError(f"the SIPp far end did not listen on {self.far.local_ip}:{self.far.sip_port} "
                           f"within {timeout:.0f} s: {result.describe()}")
