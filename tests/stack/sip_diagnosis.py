"""Why a test call went the way it did, read from LiveKit SIP's own log for that call.

Why: from the phone's side several failures look the same (100 Trying, 180 Ringing, then
nothing): no trunk or dispatch rule matched, or the call reached a room where nobody published
audio. LiveKit SIP logs each step of an inbound call with the INVITE's Call-ID (`sipCallID`),
so the harness can say which one it was, and whether telephone-event was negotiated.
Log lines (zap console format): time, LEVEL, [logger,] caller, message, {json fields}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SipLogLine:
    level: str
    message: str
    fields: dict[str, Any]


def call_log(log_path: Path, sip_call_id: str) -> list[SipLogLine]:
    """The lines LiveKit SIP logged for the call whose INVITE had Call-ID `sip_call_id`."""
    out: list[SipLogLine] = []
    try:
        text = Path(log_path).read_text(errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        if sip_call_id not in line:
            continue
        parts = line.split("\t")
        if len(parts) < 3 or not parts[-1].startswith("{"):
            continue
        try:
            fields = json.loads(parts[-1])
        except json.JSONDecodeError:
            continue
        if fields.get("sipCallID") == sip_call_id:
            out.append(SipLogLine(parts[1], parts[-2], fields))
    return out


def explain(lines: list[SipLogLine], sip_call_id: str) -> str:
    """One sentence per finding, most decisive first."""
    if not lines:
        return (f"LiveKit SIP logged nothing for Call-ID {sip_call_id}: the INVITE never reached "
                f"it (wrong address or port, or SIPp did not start)")
    by_msg = {line.message: line for line in lines}
    first = lines[0].fields
    call = f"INVITE from {first.get('fromUser')} to {first.get('toUser')}"
    findings: list[str] = []
    if "Rejecting inbound flood" in by_msg:
        findings.append(f"{call}: no inbound trunk and dispatch rule matched; LiveKit SIP dropped "
                        f"it silently (its debug log: 'Rejecting inbound flood')")
    for msg, line in by_msg.items():
        if msg.startswith("Rejecting inbound call"):
            findings.append(f"{call} rejected: {msg}")
    codecs = by_msg.get("using codecs")
    if codecs is not None and str(codecs.fields.get("dtmf-rtp", "")) in ("0", ""):
        findings.append("telephone-event was not negotiated (the phone's SDP did not offer "
                        "telephone-event/8000): keys from the phone are ignored and DTMF from "
                        "the room is not sent")
    joined = by_msg.get("Joining room")
    if joined is not None and "Accepting the call" not in by_msg:
        findings.append(f"the call joined room {joined.fields.get('room')!r} but was never "
                        f"answered: no audio track there to subscribe to (nobody published; if "
                        f"the dispatch rule names an agent, no worker serves that agent name)")
    if "Accepting the call" in by_msg:
        findings.append(f"answered in room {joined.fields.get('room') if joined else '?'!r}")
    return "; ".join(findings) or f"{call}: {', '.join(line.message for line in lines[-5:])}"
