"""In-band DTMF: how well `ivrkit.voice.dtmf_tones.DtmfDetector` hears keys, how rarely it hears
keys that are not there, and what it costs — beside a textbook detector in the same run.

    .venv/bin/python bench/inband.py          # full run (bench/results/inband.json), ~2 min
    .venv/bin/python bench/inband.py --smoke

All audio is generated here, at 8 kHz (the phone line's rate, and the rate the worker feeds the
detector), 20 ms frames as the worker gets them:
- detection: each of the 16 keys, tone start at random offsets against the detector's 5 ms grid
  (seeded), at -10 dBFS per tone unless the row varies it: durations 20-60 ms (ITU-T Q.24:
  heard from 40 ms, never under 23 ms), frequency offsets (accept +-1.5 %, reject +-3.5 %),
  twist (accept 8 dB normal / 4 dB reverse), level, and white noise at a signal-to-noise ratio
  (the tone pair's power over the noise's, full band);
- false keys: speech prompts rendered by eSpeak NG (ivrkit's offline voice) in several voices —
  ivrkit's own flow prompts plus typical IVR sentences — band-limited to 8 kHz; digital silence;
  white noise at several levels; speech with noise;
- CPU: process time of feeding the audio, per second of audio.

Baseline, same audio, same run: a textbook block Goertzel detector (`_textbook_dtmf.py`: 205-sample
blocks, strongest bin per group 6 dB over the others, level and twist limits, a key per run of
holding blocks) — what a first implementation usually is, without Q.24's duration, frequency,
signal-to-noise and harmonic rules.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from _report import Report, parser, table
from _textbook_dtmf import TextbookDetector

from ivrkit.voice.audio import Pcm
from ivrkit.voice.dtmf_tones import KEYPAD, DtmfDetector, dtmf_tone

RATE = 8000
FRAME = 160  # 20 ms
KEYS = "".join(KEYPAD)
ROOT = Path(__file__).resolve().parents[1]
VOICES = ("en-us", "en-gb", "en-us+f2", "en-us+f4", "en-us+m3", "en-us+m7", "de", "fr", "es")
#: Typical IVR prompts beside the repo's own: digits, numbers, menus, names of keys.
SENTENCES = (
    "For balances press 1. For cards press 2. For an agent press 0.",
    "Please enter your four digit PIN, then press pound.",
    "Thank you for calling Acme Bank. Your call may be recorded for quality and training purposes.",
    "Your balance is one thousand two hundred and thirty four dollars and fifty six cents.",
    "Sorry, I didn't hear a choice. Please try again.",
    "That is not a valid choice.",
    "Your reference number is 7 7 4 1 9 0 3 2.",
    "To repeat this menu, press star. To go back, press the hash key.",
    "Our opening hours are Monday to Friday, nine a.m. to five thirty p.m.",
    "Please hold while we transfer your call to the next available representative.",
    "You have three new messages and twelve saved messages.",
    "Press nine to hear these options again, or stay on the line.",
    "Your appointment is confirmed for Tuesday the fourteenth of March at eleven fifteen.",
    "If you know your party's extension, you may dial it at any time.",
    "Hmmmm. Ooooh. Aaaah. Eeeeee. Mmmmm. Whoa. Beep beep.",
    "Goodbye, and have a wonderful day!",
)


def _frames(x: npt.NDArray[np.int16]) -> Iterable[npt.NDArray[np.int16]]:
    for i in range(0, len(x), FRAME):
        yield x[i:i + FRAME]


def _run(make: Callable[[], Any], audio: npt.NDArray[np.int16]) -> tuple[str, float]:
    """The keys a fresh detector hears in `audio` (fed in 20 ms frames), and its CPU seconds."""
    detector = make()
    start = time.process_time()
    keys = [k.digit for frame in _frames(audio) for k in detector.feed(frame)]
    return "".join(keys), time.process_time() - start


DETECTORS: dict[str, Callable[[], Any]] = {"ivrkit": lambda: DtmfDetector(RATE), "textbook": lambda: TextbookDetector(RATE)}


# --- generated keys ------------------------------------------------------------------------------

def _key_audio(rng: np.random.Generator, digit: str, *, seconds: float = 0.06, snr_db: float | None = None,
               **tone: float) -> npt.NDArray[np.int16]:
    lead = int(rng.integers(400, 440))  # 50-55 ms: every offset against the 5 ms grid
    key = dtmf_tone(digit, seconds, sample_rate=RATE, **tone).array().astype(np.float64)
    x = np.zeros(lead + len(key) + 800)
    x[lead:lead + len(key)] = key
    if snr_db is not None:
        power = float(np.mean(key ** 2))
        x += rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(x))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def detection_rows(reps: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    grid: list[tuple[str, str, dict[str, float], str]] = []  # group, label, tone options, Q.24 says
    for ms in (20, 23, 30, 40, 60):
        grid.append(("duration", f"{ms} ms", {"seconds": ms / 1000}, "never" if ms <= 23 else "always" if ms >= 40 else "either"))
    for pct in (-4.0, -3.5, -2.5, -1.5, 0.0, 1.5, 2.5, 3.5, 4.0):
        grid.append(("frequency", f"{pct:+.1f} %", {"freq_offset": pct / 100},
                     "always" if abs(pct) <= 1.5 else "never" if abs(pct) >= 3.5 else "either"))
    for db in (-10.0, -9.0, -8.0, -4.0, 4.0, 5.0, 6.0):
        grid.append(("twist", f"{db:+.0f} dB (high - low)", {"twist_db": db},
                     "always" if -8 <= db <= 4 else "either" if db in (-9.0, 5.0) else "never"))
    for level in (-3.0, -20.0, -30.0, -33.0, -40.0):
        grid.append(("level", f"{level:.0f} dBFS per tone", {"level_dbfs": level}, "always" if level >= -30 else "either"))
    for snr in (30.0, 20.0, 15.0, 12.0, 9.0, 6.0):
        grid.append(("noise", f"SNR {snr:.0f} dB", {"snr_db": snr}, "always" if snr >= 15 else "either"))
    rows = []
    for group, label, options, q24 in grid:
        counts = {name: 0 for name in DETECTORS}
        wrong = {name: 0 for name in DETECTORS}
        n = 0
        for _ in range(reps):
            for digit in KEYS:
                audio = _key_audio(rng, digit, **options)
                n += 1
                for name, make in DETECTORS.items():
                    heard, _ = _run(make, audio)
                    counts[name] += heard == digit
                    wrong[name] += heard not in ("", digit)
        rows.append({"group": group, "case": label, "q24": q24, "presses": n,
                     **{f"{name}_rate": counts[name] / n for name in DETECTORS},
                     **{f"{name}_wrong": wrong[name] for name in DETECTORS}})
    return rows


# --- no keys at all --------------------------------------------------------------------------------

def repo_prompts() -> list[str]:
    """The quoted prompt sentences of the flows ivrkit ships (flows/*.yaml)."""
    found: set[str] = set()
    for path in sorted((ROOT / "flows").glob("*.yaml")):
        for text in re.findall(r'"([A-Z][^"{}]{15,})"', path.read_text()):
            found.add(text)
    return sorted(found)


def band_limited(pcm: Pcm, rate: int = RATE) -> npt.NDArray[np.int16]:
    """Resample through the spectrum (a brick-wall low-pass), as a phone line's 8 kHz codec hears
    it: linear interpolation would fold the voice's 4-11 kHz into the band as aliases."""
    n = pcm.num_samples
    m = round(n * rate / pcm.sample_rate)
    x = np.fft.irfft(np.fft.rfft(pcm.array().astype(np.float64))[: m // 2 + 1], m) * m / n
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def speech(voices: Sequence[str], sentences: Sequence[str]) -> list[tuple[str, npt.NDArray[np.int16]]]:
    from ivrkit.voice.speech import EspeakVoice

    out = []
    for voice in voices:
        engine = EspeakVoice(voice)
        for text in sentences:
            out.append((voice, band_limited(engine.synthesize(text))))
    return out


def false_rows(clips: list[tuple[str, npt.NDArray[np.int16]]], noise_seconds: float,
               rng: np.random.Generator) -> tuple[list[dict[str, Any]], dict[str, float]]:
    sets: list[tuple[str, list[npt.NDArray[np.int16]]]] = []
    for voice in dict.fromkeys(v for v, _ in clips):
        sets.append((f"speech, eSpeak {voice}", [a for v, a in clips if v == voice]))
    n = round(noise_seconds * RATE)
    sets.append(("digital silence", [np.zeros(n, dtype=np.int16)]))
    for dbfs in (-60.0, -40.0, -20.0, -10.0):
        sigma = 32768 * 10 ** (dbfs / 20)
        sets.append((f"white noise {dbfs:.0f} dBFS", [np.clip(rng.normal(0, sigma, n), -32768, 32767).astype(np.int16)]))
    noisy = []
    for _, a in clips:
        x = a.astype(np.float64)
        x += rng.normal(0, np.sqrt(np.mean(x ** 2)) / 10, len(x))  # 20 dB below the speech
        noisy.append(np.clip(np.round(x), -32768, 32767).astype(np.int16))
    sets.append(("speech + noise 20 dB down, all voices", noisy))
    rows = []
    cpu = {name: 0.0 for name in DETECTORS}
    seconds_total = 0.0
    for label, audios in sets:
        seconds = sum(len(a) for a in audios) / RATE
        seconds_total += seconds
        row: dict[str, Any] = {"audio": label, "seconds": seconds}
        for name, make in DETECTORS.items():
            keys, spent = "", 0.0
            for a in audios:
                heard, t = _run(make, a)
                keys += heard
                spent += t
            cpu[name] += spent
            row[f"{name}_false"] = len(keys)
            row[f"{name}_false_per_hour"] = len(keys) / seconds * 3600
        rows.append(row)
    return rows, {name: cpu[name] / seconds_total for name in DETECTORS}


def main() -> int:
    p = parser(__doc__ or "")
    args = p.parse_args()
    reps = 1 if args.smoke else 10
    voices = VOICES[:1] if args.smoke else VOICES
    sentences = SENTENCES[:2] if args.smoke else (*SENTENCES, *repo_prompts())
    noise_seconds = 5.0 if args.smoke else 120.0
    report = Report("inband", "In-band DTMF: detection, false keys and CPU, ivrkit vs a textbook Goertzel detector")
    report.settings = {"rate_hz": RATE, "frame_ms": 20, "presses_per_case": reps * len(KEYS), "voices": list(voices),
                       "sentences": len(sentences), "noise_seconds_each": noise_seconds, "seed": 14}
    report.print_header()
    rng = np.random.default_rng(14)

    detect = detection_rows(reps, rng)
    report.results += [{"kind": "detection", **r} for r in detect]
    report.show(table(["group", "case", "Q.24: heard", "presses", "ivrkit heard", "textbook heard", "wrong key (ivrkit / textbook)"],
                      [[r["group"], r["case"], r["q24"], r["presses"], f"{r['ivrkit_rate']:.1%}", f"{r['textbook_rate']:.1%}",
                        f"{r['ivrkit_wrong']} / {r['textbook_wrong']}"] for r in detect]))

    clips = speech(voices, sentences)
    false, cpu = false_rows(clips, noise_seconds, rng)
    report.results += [{"kind": "false_keys", **r} for r in false]
    total_s = sum(r["seconds"] for r in false)
    speech_rows = [r for r in false if r["audio"].startswith("speech, ")]
    speech_s = sum(r["seconds"] for r in speech_rows)
    report.show(table(["audio (no keys in it)", "seconds", "ivrkit false keys", "textbook false keys",
                       "ivrkit per hour", "textbook per hour"],
                      [[r["audio"], r["seconds"], r["ivrkit_false"], r["textbook_false"], r["ivrkit_false_per_hour"],
                        r["textbook_false_per_hour"]] for r in false]
                      + [["all eSpeak speech", speech_s, sum(r["ivrkit_false"] for r in speech_rows),
                          sum(r["textbook_false"] for r in speech_rows),
                          sum(r["ivrkit_false"] for r in speech_rows) / speech_s * 3600,
                          sum(r["textbook_false"] for r in speech_rows) / speech_s * 3600]]))
    report.results.append({"kind": "cpu", "audio_seconds": total_s,
                           **{f"{name}_cpu_ms_per_audio_s": cpu[name] * 1000 for name in DETECTORS}})
    report.show(table(["detector", "CPU ms per second of audio", "% of one core per listening call"],
                      [[name, cpu[name] * 1000, f"{cpu[name]:.2%}"] for name in DETECTORS]))
    report.notes.append("CPU is the detector alone (process time over all the false-key audio, fed in 20 ms frames); "
                        "receiving and decoding the caller's track in the worker costs more: bench/inband_cost.py")
    report.notes.append("speech: eSpeak NG at 22,050 Hz, band-limited to 8 kHz through the spectrum; "
                        f"{len(sentences)} sentences ({len(SENTENCES)} typical IVR prompts + the quoted prompts of flows/*.yaml) "
                        f"x {len(voices)} voices")
    report.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
