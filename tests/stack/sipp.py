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
from .rtp_pcap import KeyPress, write_phone_pcap
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

    @property
    def invite_responses(self) -> list[int]:
        """Status codes of the responses to our INVITE, in order (100, 180, ..., 200)."""
        out = []
        for m in self.messages:
            if m.direction == "received" and m.first_line.startswith("SIP/2.0 ") and \
                    re.search(r"^CSeq:\s*\d+\s+INVITE", m.text, re.M | re.I):
                out.append(int(m.first_line.split()[1]))
        return out

    @property
    def call_id(self) -> str:
        """The Call-ID of our INVITE (LiveKit SIP logs it as `sipCallID`)."""
        for m in self.messages:
            if m.direction == "sent" and m.first_line.startswith("INVITE "):
                found = re.search(r"^Call-ID:\s*(\S+)", m.text, re.M | re.I)
                if found:
                    return found.group(1)
        return ""

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
        for m in self.messages:
            if m.first_line.startswith("BYE "):
                return "phone" if m.direction == "sent" else "far"
        return None

    def describe(self) -> str:
        """One paragraph for assertion messages: what SIP saw and what RTP arrived."""
        codes = self.invite_responses
        rec = self.recording
        if not codes:
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


class SippPhone:
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
                                     call.hold + 2.0, tone_hz=call.tone_hz)
        self.scenario = self.workdir / "phone.xml"
        self.scenario.write_text(_scenario(call, self.pcap))
        self.messages = self.workdir / "sipp-messages.log"
        self.recorder = RtpRecorder(call.local_ip, call.recorder_port,
                                    self.workdir / "heard.pcap", prefix=prefix)
        self.timeout = call.answer_timeout + call.hold + 10.0
        self._out = open(self.workdir / "sipp-screen.log", "wb")  # noqa: SIM115 - closed in wait()
        self._result: SippResult | None = None
        self.started = time.time()
        self.proc = subprocess.Popen(
            [*prefix, sipp, f"{call.sip_host}:{call.sip_port}", "-sf", str(self.scenario),
             "-m", "1", "-l", "1", "-t", "u1", "-i", call.local_ip, "-p", str(call.local_sip_port),
             "-mi", call.local_ip, "-mp", str(call.media_port), "-nostdin",
             "-recv_timeout", f"{round(call.answer_timeout * 1000)}",
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
                            self.workdir, timed_out=timed_out)
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
