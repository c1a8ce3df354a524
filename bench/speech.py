"""Row 11: the offline recogniser — accuracy, latency and CPU on eSpeak NG speech.

    .venv/bin/python bench/speech.py          # full run (bench/results/speech.json)
    .venv/bin/python bench/speech.py --smoke

What is recognised: the menu words of flows/press_or_say.yaml's main menu (each phrase said
alone) and 4-digit strings ("four three oh one"), rendered by eSpeak NG (ivrkit.voice.speech)
in several voices, with 0.5 s of silence before and 1.2 s after, in two conditions: clean (16
kHz) and phone (band-limited to 8 kHz, then white noise at 15 dB SNR). Each utterance is fed
in 20 ms frames, as the worker's `ParticipantAudio` feeds it.

Side by side, in the same run, on the same audio:
- ivrkit: `SphinxRecognizer` — a JSGF grammar of the state's words (digits: exactly 4) and
  pocketsphinx's `Endpointer` for voice activity (what the worker runs);
- keyphrase list: pocketsphinx keyword spotting of the same phrases at three thresholds (menu
  words only; a keyphrase search has no digit-count grammar), same endpointer;
- energy VAD: the same grammar with a plain energy gate (-40 dBFS, 0.3 s hangover) instead of
  the endpointer;
- unrestricted (baseline): pocketsphinx's general en-us language model, its text then matched
  by ivrkit.spoken (`choose` / `digits_of`) as a cloud STT's would be.

Accuracy: the utterance's meaning was right (the option, or all four digits); for words that
are no option ("pizza", "what is the weather"), that no option was chosen (a no-match). Latency: from the
true end of speech in the audio to the `Speech` result (audio time, so it is the VAD's hangover
plus decoding, not this machine's speed). CPU: process time per utterance fed.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import Report, parser, table  # noqa: E402

from ivrkit.channel import Listen, Speech, SpeechStarted  # noqa: E402
from ivrkit.flow.loader import load_flow  # noqa: E402
from ivrkit.livekit.sphinx import SPHINX_RATE, SphinxRecognizer, grammar  # noqa: E402
from ivrkit.spoken import choose, digits_of  # noqa: E402
from ivrkit.voice.audio import Pcm, concat, frames, resample, silence  # noqa: E402
from ivrkit.voice.speech import EspeakVoice  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VOICES = ["en-us", "en-gb-x-rp", "en-us+f3", "en-us+m3", "en-us+f2"]
DIGIT_STRINGS = ["4301", "1234", "9876", "5550", "2718", "8642", "7093", "3165"]
WORDS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
         "7": "seven", "8": "eight", "9": "nine"}
LEAD, TAIL = 0.5, 1.2
#: Said to the menu but not one of its words: a recogniser should answer no option (a no-match).
OUT_OF_GRAMMAR = ["pizza", "hello there", "what is the weather", "cancel my order"]


def _said(digits: str) -> str:
    return " ".join("oh" if d == "0" and i else WORDS[d] for i, d in enumerate(digits))


def _utterance(voice: EspeakVoice, text: str, phone: bool, rng: np.random.Generator) -> tuple[Pcm, float]:
    speech = resample(voice.synthesize(text), SPHINX_RATE)
    pcm = concat([silence(LEAD, sample_rate=SPHINX_RATE), speech, silence(TAIL, sample_rate=SPHINX_RATE)])
    end = LEAD + speech.duration
    if not phone:
        return pcm, end
    narrow = resample(resample(pcm, 8000), SPHINX_RATE)
    x = narrow.array().astype(np.float64)
    s = speech.array().astype(np.float64)
    noise = rng.normal(0, np.sqrt(np.mean(s ** 2) / 10 ** (15 / 10)), len(x))
    return Pcm.from_array(np.clip(x + noise, -32768, 32767).astype(np.int16), SPHINX_RATE), end


class _EnergyGate:
    """The baseline VAD: speech while 20 ms frames are above -40 dBFS, ended 0.3 s after the last."""

    def __init__(self, decoder: Any, search: str, emit: Callable[[SpeechStarted | Speech], None]) -> None:
        self.decoder, self.search, self.emit = decoder, search, emit
        self.speaking = False
        self.quiet = 0.0

    def feed(self, pcm: Pcm, at: float) -> None:
        x = pcm.array().astype(np.float64)
        db = 20 * np.log10(max(np.sqrt(np.mean(x ** 2)), 1e-9) / 32768)
        if db > -40:
            if not self.speaking:
                self.speaking = True
                self.emit(SpeechStarted(at))
                self.decoder.activate_search(self.search)
                self.decoder.start_utt()
            self.quiet = 0.0
        elif self.speaking:
            self.quiet += pcm.duration
        if self.speaking:
            self.decoder.process_raw(pcm.samples, False, False)
            if self.quiet >= 0.3:
                self.speaking = False
                self.decoder.end_utt()
                hyp = self.decoder.hyp()
                self.emit(Speech(hyp.hypstr if hyp else "", at))

    def close(self) -> None:
        if self.speaking:
            self.decoder.end_utt()


def _run(feed: Callable[[Pcm, float], None], pcm: Pcm) -> float:
    """Feed `pcm` in 20 ms frames; returns the CPU seconds it took."""
    cpu = time.process_time()
    at = 0.0
    for frame in frames(pcm, 20):
        at += frame.duration
        feed(frame, at)
    return time.process_time() - cpu


def main() -> int:
    p = parser(__doc__ or "")
    args = p.parse_args()
    from pocketsphinx import Decoder, get_model_path

    flow = load_flow(REPO / "flows" / "press_or_say.yaml")
    menu = flow.states["main"].menu
    assert menu is not None
    words = dict(menu.words)
    phrases = [ph for key in words for ph in words[key]]
    voices = VOICES[:2] if args.smoke else VOICES
    digit_strings = DIGIT_STRINGS[:2] if args.smoke else DIGIT_STRINGS
    menu_phrases = phrases[:3] if args.smoke else phrases
    report = Report("speech", "Row 11: offline recognition of eSpeak NG speech (pocketsphinx: grammar vs keyphrases vs "
                              "unrestricted; endpointer vs energy VAD)")
    report.settings = {"voices": voices, "menu_phrases": menu_phrases, "digit_strings": digit_strings,
                       "phone": "8 kHz band + white noise at 15 dB SNR", "frame_ms": 20}
    report.print_header()

    ours = SphinxRecognizer()
    ours.load()
    menu_req = Listen(phrases=tuple(phrases))
    digit_req = Listen(digits=True, min_digits=4, max_digits=4)
    decoder = ours._decoder  # the same decoder for the energy-gate baseline's grammar searches
    menu_search = ours._search(grammar(menu_req) or "")
    digit_search = ours._search(grammar(digit_req) or "")
    kws: dict[str, Any] = {}
    kws_paths = []
    for threshold in ("1e-20", "1e-30", "1e-40"):  # one threshold for all phrases: the usual starting points
        path = Path(tempfile.gettempdir()) / f"ivrkit-bench-kws-{threshold}.txt"
        path.write_text("".join(f"{ph} /{threshold}/\n" for ph in phrases))
        kws_paths.append(path)
        kws[threshold] = Decoder(kws=str(path), loglevel="FATAL", samprate=SPHINX_RATE)
    free = Decoder(loglevel="FATAL", samprate=SPHINX_RATE,
                   lm=str(Path(get_model_path()) / "en-us" / "en-us.lm.bin"))

    def via_ours(req: Listen) -> Callable[[Pcm], tuple[list[Any], float]]:
        def go(pcm: Pcm) -> tuple[list[Any], float]:
            out: list[Any] = []
            rec = ours.start(req, out.append)
            cpu = _run(rec.feed, pcm)
            rec.close()
            return out, cpu
        return go

    def via_energy(search: str) -> Callable[[Pcm], tuple[list[Any], float]]:
        def go(pcm: Pcm) -> tuple[list[Any], float]:
            out: list[Any] = []
            gate = _EnergyGate(decoder, search, out.append)
            cpu = _run(gate.feed, pcm)
            gate.close()
            return out, cpu
        return go

    def via_decoder(dec: Any, search: str | None) -> Callable[[Pcm], tuple[list[Any], float]]:
        def go(pcm: Pcm) -> tuple[list[Any], float]:
            from ivrkit.livekit.sphinx import SphinxRecognition

            out: list[Any] = []
            rec = SphinxRecognition(dec, search, out.append, ours)
            cpu = _run(rec.feed, pcm)
            rec.close()
            return out, cpu
        return go

    systems: dict[str, dict[str, Callable[[Pcm], tuple[list[Any], float]]]] = {
        "grammar + endpointer (ivrkit)": {"menu": via_ours(menu_req), "digits": via_ours(digit_req)},
        **{f"keyphrases /{t}/ + endpointer": {"menu": via_decoder(d, "_default")} for t, d in kws.items()},
        "grammar + energy VAD": {"menu": via_energy(menu_search), "digits": via_energy(digit_search)},
        "unrestricted LM (baseline)": {"menu": via_decoder(free, "_default"), "digits": via_decoder(free, "_default")},
    }
    rng = np.random.default_rng(14)
    cases: list[tuple[str, str, str, str, bool]] = []  # kind, voice, text, expected, phone
    for voice in voices:
        for phone in (False, True):
            for ph in menu_phrases:
                key = next(k for k, v in words.items() if ph in v)
                cases.append(("menu", voice, ph, key, phone))
            for ds in digit_strings:
                cases.append(("digits", voice, _said(ds), ds, phone))
            for other in OUT_OF_GRAMMAR[:1] if args.smoke else OUT_OF_GRAMMAR:
                cases.append(("other", voice, other, "", phone))
    audio = {}
    for kind, voice, text, _, phone in cases:
        if (voice, text, phone) not in audio:
            audio[(voice, text, phone)] = _utterance(EspeakVoice(voice), text, phone, rng)

    rows = []
    for name, by_kind in systems.items():
        for phone in (False, True):
            res: dict[str, Any] = {"system": name, "condition": "phone" if phone else "clean"}
            for kind in ("menu", "digits", "other"):
                if (kind if kind != "other" else "menu") not in by_kind:
                    continue
                ok = heard = 0
                lat: list[float] = []
                cpus: list[float] = []
                n = 0
                for k, voice, text, expected, ph in cases:
                    if k != kind or ph != phone:
                        continue
                    n += 1
                    pcm, end = audio[(voice, text, phone)]
                    out, cpu = by_kind[kind if kind != "other" else "menu"](pcm)
                    cpus.append(cpu)
                    results = [e for e in out if isinstance(e, Speech)]
                    if not results:
                        ok += kind == "other"  # nothing heard: no option chosen, right for these
                        continue
                    heard += 1
                    last = results[-1]
                    said = " ".join(r.text for r in results)
                    meaning = digits_of(said) if kind == "digits" else choose(words, said)
                    ok += meaning == (expected or None)
                    lat.append(last.at - end)
                res[f"{kind}_n"] = n
                res[f"{kind}_accuracy"] = ok / n if n else None
                res[f"{kind}_heard"] = heard / n if n else None
                res[f"{kind}_latency_p50_ms"] = statistics.median(lat) * 1000 if lat else None
                res[f"{kind}_cpu_ms_per_utterance"] = statistics.median(cpus) * 1000 if cpus else None
            report.results.append(res)

            def cell(kind: str, res: dict[str, Any] = res) -> str:
                if f"{kind}_n" not in res:
                    return "-"
                acc = res[f"{kind}_accuracy"]
                lat = res[f"{kind}_latency_p50_ms"]
                return (f"{acc * 100:.0f} % of {res[f'{kind}_n']}, heard {res[f'{kind}_heard'] * 100:.0f} %, "
                        f"end→result {lat:.0f} ms" if lat is not None else f"{acc * 100:.0f} %") + \
                    f", CPU {res[f'{kind}_cpu_ms_per_utterance']:.0f} ms"
            other = f"{res['other_accuracy'] * 100:.0f} % of {res['other_n']}" if "other_n" in res else "-"
            rows.append([name, res["condition"], cell("menu"), cell("digits"), other])
    report.show(table(["recogniser", "audio", "menu words: right option", "4-digit strings: all 4 right",
                       "other words: no option (rejected)"], rows))

    quiet = silence(10.0, sample_rate=SPHINX_RATE)
    rec = ours.start(menu_req, lambda e: None)
    idle_cpu = _run(rec.feed, quiet)
    rec.close()
    report.results.append({"listening_silence_cpu_ms_per_s": idle_cpu * 100})
    report.show(table(["cost of listening", "CPU"], [["endpointer on silence (a listening state, caller quiet)",
                                                      f"{idle_cpu * 100:.2f} ms per second of audio"],
                                                     ["key-only state", "0 (the caller's audio is not subscribed)"]]))
    report.notes.append("eSpeak NG speech is synthetic: real callers differ (accents, line noise, disfluency); "
                        "read the columns against each other, not as a promise for real calls")
    report.notes.append("keyphrase spotting needs a threshold per phrase: with one for all, short words are "
                        "missed (strict) or several phrases fire on one utterance (loose); a grammar needs none")
    report.notes.append("energy VAD: a fixed -40 dBFS gate never closes in line noise (phone rows: nothing "
                        "heard); the endpointer adapts")
    report.finish(args)
    for path in kws_paths:
        path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
