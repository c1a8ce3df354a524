"""`POST /api/say`: words typed on the dial pad, rendered to speech audio (WAV) by the offline voice.

Why: a flow that takes speech (`input: [dtmf, speech]`) should be tryable from the browser
without a microphone, and the same words should sound the same every time — so the server
renders them with eSpeak NG (`ivrkit.voice.speech`, no key, no download) and the page plays the
WAV into the track it publishes as the caller's microphone. The worker then hears it through
its recogniser exactly as it would hear a person.

Bounds: at most `MAX_CHARS` characters (a phrase or a number, not a speech), no control
characters. The body must be JSON (`{"text": "billing"}`): a page on another site cannot send
JSON here without a CORS preflight, which this server never answers, so it cannot make the
server speak. The text is never logged: it may be a PIN said aloud.
"""

from __future__ import annotations

import asyncio
import io
import wave

from aiohttp import web

from ivrkit.errors import IvrkitError, SpeechError
from ivrkit.voice.audio import Pcm, concat, silence
from ivrkit.voice.speech import EspeakVoice

__all__ = ["LEAD_IN", "MAX_CHARS", "TAIL", "SayRefused", "check_text", "say_handler", "say_wav", "wav_bytes"]

MAX_CHARS = 200
#: Silence before and after the words: a recogniser's endpointer needs a moment of quiet on
#: each side to tell where speech starts and ends (as tests/e2e/test_speech.py pads its WAVs).
LEAD_IN = 0.3
TAIL = 1.0


class SayRefused(IvrkitError, ValueError):
    """The text cannot be said: empty, too long, or with control characters. `status` is the
    HTTP status the endpoint answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_text(text: object) -> str:
    """The text to say, stripped; `SayRefused` saying why when it cannot be said."""
    if not isinstance(text, str):
        raise SayRefused('send {"text": "words to say"}: "text" must be a string')
    text = " ".join(text.split())  # newlines and tabs are spaces to a voice
    if not text:
        raise SayRefused("nothing to say: type some words")
    if len(text) > MAX_CHARS:
        raise SayRefused(f"too long to say: {len(text)} characters, at most {MAX_CHARS}", status=413)
    if any(not ch.isprintable() for ch in text):
        raise SayRefused("the text has control characters: type plain words")
    return text


def say_wav(text: str, voice: EspeakVoice | None = None) -> bytes:
    """`text` (already checked) spoken by `voice` (default en-us), padded with silence, as a
    mono 16-bit WAV file's bytes. Raises `SpeechError` when the voice cannot be loaded."""
    voice = voice or EspeakVoice()
    words = voice.synthesize(text)
    rate = words.sample_rate
    return wav_bytes(concat([silence(LEAD_IN, sample_rate=rate), words, silence(TAIL, sample_rate=rate)]))


def wav_bytes(pcm: Pcm) -> bytes:
    """`pcm` as the bytes of a mono 16-bit WAV file (what the browser's decodeAudioData reads)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(pcm.sample_rate)
        w.writeframes(pcm.samples)
    return buf.getvalue()


async def say_handler(request: web.Request) -> web.Response:
    """`POST {"text": ...}` -> `audio/wav`; `{"error": ...}` with 400 / 413 / 415, or 503 when
    the offline voice is missing (the message says how to install it)."""
    if request.content_type != "application/json":
        return web.json_response({"error": 'send JSON: {"text": "words to say"}'}, status=415)
    if request.content_length is not None and request.content_length > 8 * MAX_CHARS + 64:
        return web.json_response({"error": f"too long to say: at most {MAX_CHARS} characters"}, status=413)
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": 'the body is not JSON: send {"text": "words to say"}'}, status=400)
    try:
        text = check_text(body.get("text") if isinstance(body, dict) else None)
    except SayRefused as exc:
        return web.json_response({"error": str(exc)}, status=exc.status)
    try:
        wav = await asyncio.to_thread(say_wav, text)  # CPU-bound, and eSpeak holds one global lock
    except SpeechError as exc:
        return web.json_response({"error": f"the offline voice cannot speak: {exc}"}, status=503)
    return web.Response(body=wav, content_type="audio/wav", headers={"Cache-Control": "no-store"})
