"""Row 11b: a navigate step's words — phrases heard in a far end's prompts by the offline recogniser.

    .venv/bin/python bench/far_words.py

A far end's prompt is a phrase among other words ("Sorry, invalid entry."), or other words only
("That is not a valid choice."). ivrkit's far end grammar is the step's phrases with optional
filler words around them, or filler words alone (`Listen.other`, `ivrkit.livekit.sphinx`).
Side by side on the same audio: pocketsphinx's defaults (what the caller's recogniser uses),
its default beams with the far end's low word penalty, and `FAR_END_DECODER` (low penalty,
narrower beams). Each prompt is rendered by eSpeak NG
in several voices at 8 kHz (the phone rate the worker hears a SIP leg at), fed in 20 ms frames.

Counted: a prompt holding a phrase is right when that phrase is heard; a prompt holding none
is right when no phrase is heard (a false phrase would fail or pass a step wrongly). CPU: process
time per second of audio fed (above 1, a leg's audio queues up behind the decoder).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivrkit.channel import Listen, Speech, SpeechStarted  # noqa: E402
from ivrkit.far_end import far_end_speech  # noqa: E402
from ivrkit.livekit.sphinx import FAR_END_DECODER, SphinxRecognizer  # noqa: E402
from ivrkit.spoken import choose  # noqa: E402
from ivrkit.voice.audio import Pcm, concat, silence  # noqa: E402

PHRASES = ("for billing", "invalid entry", "please hold")
PROMPTS = {  # prompt -> the phrase it holds ("" for none)
    "Welcome to Acme. For billing press 2.": "for billing",
    "For sales press 1. For billing press 2.": "for billing",
    "Invalid entry.": "invalid entry",
    "Invalid entry. Please try again.": "invalid entry",
    "Sorry, invalid entry.": "invalid entry",
    "Please hold.": "please hold",
    "Please hold while we connect you.": "please hold",
    "That is not a valid choice.": "",
    "Main menu. For payments press 1.": "",
    "Your balance is twelve dollars.": "",
    "Thank you for calling. All our lines are busy.": "",
}
VOICES = ("en-us", "en-gb", "en-us+f3")


def heard(recognizer: SphinxRecognizer, pcm: Pcm) -> str | None:
    out: list[SpeechStarted | Speech] = []
    recognition = recognizer.start(Listen(phrases=PHRASES, other=True), out.append)
    for i in range(0, len(pcm.samples) // 2, 160):
        recognition.feed(Pcm(pcm.samples[i * 2:(i + 160) * 2], pcm.sample_rate), i / pcm.sample_rate)
    recognition.close()
    texts = [e.text for e in out if isinstance(e, Speech)]
    for text in texts:
        phrase = choose({p: (p,) for p in PHRASES}, text)
        if phrase is not None:
            return phrase
    return None


def main() -> None:
    audio = {(text, voice): concat([far_end_speech(text, voice=voice), silence(1.0, sample_rate=8000)])
             for text in PROMPTS for voice in VOICES}
    configs = {"pocketsphinx defaults": {}, "wip 0.01, default beams": {"wip": 0.01},
               "FAR_END_DECODER (ivrkit)": dict(FAR_END_DECODER)}
    seconds = sum(pcm.duration for pcm in audio.values())
    print("| decoder | phrase heard (prompts holding one) | no phrase (prompts holding none) | CPU s per audio s |")
    print("|---|---|---|---|")
    for name, options in configs.items():
        recognizer = SphinxRecognizer(decoder_options=options)
        recognizer.load()
        hit = miss_ok = holding = other = 0
        wrong: list[str] = []
        started = time.process_time()
        for (text, voice), pcm in audio.items():
            got = heard(recognizer, pcm)
            want = PROMPTS[text] or None
            if want is None:
                other += 1
                miss_ok += got is None
            else:
                holding += 1
                hit += got == want
            if got != want:
                wrong.append(f"{text!r} ({voice}) -> {got}")
        cpu = (time.process_time() - started) / seconds
        print(f"| {name} | {hit}/{holding} | {miss_ok}/{other} | {cpu:.2f} |")
        for line in wrong:
            print(f"    wrong: {line}")

if __name__ == "__main__":
    main()
