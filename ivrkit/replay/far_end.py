"""The dialled party of a recorded call, rebuilt so that `amd:` decides the same again.

Why: a trace keeps what the detector decided (the `amd` record: outcome, cause, when in the
audio, the beep), never the far end's audio. A replay that heard nothing would decide `silence`
and take another branch. From the record and the flow's AMD settings, this builds energy-only
audio that leads the same detector to the same outcome, cause and moment: a burst of 200 Hz
(loud, and below the beep band) where the rules need voice, silence elsewhere, and a tone where
the beep was. Causes it cannot rebuild (`no_audio`, settings that leave no room) give None and
a note: the replay then says where it diverged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ivrkit.flow.model import Flow
from ivrkit.replay.recording import Rec

if TYPE_CHECKING:
    from ivrkit.voice.audio import Pcm

RATE = 8000
_VOICE_HZ = 200.0


def far_end(records: Sequence[Rec], flow: Flow) -> tuple[Pcm | None, bool, list[str]]:
    """(audio for `FakeChannel(far_end=)`, whether the far end hangs up after it, notes)."""
    rec = next((r for r in records if r.kind == "amd"), None)
    if rec is None:
        return None, False, []
    state = flow.states.get(rec.state or "")
    spec = state.dial.amd if state is not None and state.dial is not None else None
    if spec is None:
        return None, False, [f"the recorded call ran amd in state '{rec.state}', which has no dial with amd: now"]
    s = spec.settings
    cause, at = str(rec.data.get("cause")), int(rec.data.get("at_ms", 0))
    mw, gap = _whole(s.min_word_length), _whole(s.between_words_silence)
    voice: list[tuple[int, int]] = []  # (start ms, end ms) of loud audio
    tones: list[tuple[int, int, float]] = []
    hangs_up, length = False, at + 10_000
    if cause == "after_greeting_silence":
        end = at - _whole(s.after_greeting_silence)
        start = end - max(mw, min(200, _whole(s.greeting) - 20, _whole(s.maximum_word_length) - 20))
        voice.append((start, end))
    elif cause == "long_greeting":
        voice.append((at - _whole(s.greeting), length))
    elif cause == "max_word_length":
        voice.append((at - _whole(s.maximum_word_length), length))
    elif cause == "max_words":
        n = s.maximum_number_of_words
        first = at - (n - 1) * (mw + gap) - mw
        voice += [(first + i * (mw + gap), first + i * (mw + gap) + mw) for i in range(n)]
    elif cause == "beep":
        tones.append((at - 120, at + 380, float((rec.data.get("beep") or {}).get("hz", 1000))))
    elif cause == "too_long":
        voice += [(t, t + 20) for t in range(100, at + 200, 100)]  # blips: never a word, never silence
    elif cause == "hangup":
        hangs_up, length = True, at
    elif cause != "initial_silence":
        return None, False, [f"the recorded amd result ({rec.data.get('outcome')}, {cause}) cannot be rebuilt: "
                             "the replay's far end is silent"]
    beep = rec.data.get("beep")
    if isinstance(beep, dict) and cause != "beep" and beep.get("end_ms") is not None:
        tones.append((int(beep["start_ms"]), int(beep["end_ms"]), float(beep.get("hz", 1000))))
    if any(a < gap for a, _ in voice if cause != "too_long") or any(a < 0 for a, _, _ in tones):
        return None, False, [f"the recorded amd result ({cause} at {at} ms) cannot be rebuilt with this flow's "
                             "amd settings: the replay's far end is silent"]
    return _render(voice, tones, length), hangs_up, []


def _whole(ms: int) -> int:
    """`ms` rounded up to whole 20 ms frames: how long the detector takes to count it."""
    return -(-ms // 20) * 20


def _render(voice: list[tuple[int, int]], tones: list[tuple[int, int, float]], length_ms: int) -> Pcm:
    import numpy as np

    from ivrkit.voice.audio import Pcm

    x = np.zeros(length_ms * RATE // 1000)
    t = np.arange(x.size) / RATE
    spans = [(a, b, _VOICE_HZ, 0.5) for a, b in voice] + [(a, b, hz, 0.3) for a, b, hz in tones]
    for a, b, hz, level in spans:
        lo, hi = a * RATE // 1000, min(b * RATE // 1000, x.size)
        x[lo:hi] = level * np.sin(2 * np.pi * hz * t[lo:hi])
    return Pcm.from_array(x, RATE)
