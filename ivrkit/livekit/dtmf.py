"""DTMF at the LiveKit boundary: every key event in or out is checked against the RFC 4733 table.

Why a module of its own: LiveKit delivers a key as a pair (`code`, `digit`) and sends one the
same way, and the two halves can disagree — a web client may send `code=0, digit="5"`, a Go
client may leave `digit` empty, LiveKit SIP delivers keys A-D as lowercase `'a'..'d'` and drops
uppercase ones on the way out. The rules here decide, in one place, what counts as a key:

* incoming: `digit` must be one of 0-9 * # A-D (a-d accepted and upper-cased) and `code` must be
  the RFC 4733 event code of that digit. A pair that disagrees is rejected, never guessed. An
  empty `digit` with a code 0-15 is accepted: the code *is* the RFC 4733 event (it is what the
  phone put on the wire) and a few senders fill in only that field.
* outgoing: a key becomes `(code, lowercase digit)`, the form LiveKit SIP turns into an RFC 4733
  telephone-event (uppercase A-D would be dropped by the gateway).

No LiveKit import: this is pure and unit-tested (tests/livekit/test_dtmf.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ivrkit.channel import DTMF_CODES
from ivrkit.errors import IvrkitError

__all__ = ["DtmfRejected", "KEY_FOR_CODE", "OutgoingDtmf", "check_incoming", "outgoing"]

#: RFC 4733 event code -> normalised key (upper-case A-D), the inverse of `DTMF_CODES`.
KEY_FOR_CODE: dict[int, str] = {code: key for key, code in DTMF_CODES.items()}


class DtmfRejected(IvrkitError, ValueError):
    """An incoming DTMF event that is not a valid RFC 4733 key. The message says why.

    Raised by `check_incoming`; `LiveKitChannel` logs the event, records it as ignored and
    drops it, so it never reaches the call. Not a `ChannelError`: that one means an action the
    call asked for failed, and sends the caller down the error path. Also a `ValueError`, as it
    was before it joined the `IvrkitError` tree.

    The message never repeats more than the one offending digit/code, so it is safe to log even
    while a PIN is being typed (a single key says nothing about the PIN).
    """


def _normalise_digit(digit: str) -> str | None:
    d = digit.strip()
    if len(d) != 1:
        return None
    up = d.upper()
    return up if up in DTMF_CODES else None


def check_incoming(code: int, digit: str) -> str:
    """The normalised key (`0-9 * # A-D`) of an incoming event, or raise `DtmfRejected`.

    >>> check_incoming(12, "a")
    'A'
    >>> check_incoming(11, "#")
    '#'
    """
    if not isinstance(code, int) or isinstance(code, bool):
        raise DtmfRejected(f"DTMF code {code!r} is not an integer")
    if digit == "":
        if code in KEY_FOR_CODE:
            return KEY_FOR_CODE[code]
        raise DtmfRejected(f"DTMF code {code} with no digit is not an RFC 4733 key (0-15)")
    key = _normalise_digit(digit)
    if key is None:
        raise DtmfRejected(
            f"DTMF digit {digit[:8]!r} (code {code}) is not a key: expected one of 0-9 * # A-D"
        )
    expected = DTMF_CODES[key]
    if code != expected:
        raise DtmfRejected(
            f"DTMF code {code} does not match digit {digit!r} (RFC 4733 code of {key!r} is "
            f"{expected}); dropped rather than guessing which one was meant"
        )
    return key


@dataclass(frozen=True, slots=True)
class OutgoingDtmf:
    """What `LocalParticipant.publish_dtmf(code=..., digit=...)` gets for one key."""

    code: int
    digit: str


def outgoing(key: str) -> OutgoingDtmf:
    """The (code, digit) pair to publish for `key`; A-D go out lowercase ('a', code 12).

    Raises ValueError for anything that is not a single DTMF key (pauses such as 'w' are the
    caller's pacing, not a key).
    """
    norm = _normalise_digit(key) if len(key) == 1 else None
    if norm is None:
        raise ValueError(f"cannot send {key!r} as DTMF: expected one key of 0-9 * # A-D")
    return OutgoingDtmf(code=DTMF_CODES[norm], digit=norm.lower())
