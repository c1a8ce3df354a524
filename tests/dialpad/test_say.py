"""ivrkit.dialpad.say: POST /api/say turns typed words into WAV speech, on a real aiohttp server.

The WAV is checked the way the worker uses it: decoded and fed to the offline recogniser, which
must hear the words. The browser playing it into its track is tests/e2e/test_dialpad.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivrkit.channel import Listen, Speech
from ivrkit.dialpad import say
from ivrkit.dialpad.say import LEAD_IN, MAX_CHARS, TAIL, SayRefused, check_text
from ivrkit.dialpad.server import make_app
from ivrkit.errors import SpeechError
from ivrkit.livekit.sphinx import SPHINX_RATE, SphinxRecognizer
from ivrkit.voice.audio import frames, read_wav, resample
from ivrkit.voice.speech import ESPEAK_SAMPLE_RATE
from tests.dialpad.test_server import _opts, web_dir  # noqa: F401  (the page's files, as a fixture)


@pytest.fixture
async def client(web_dir: Path) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]  # noqa: F811
    async with TestClient(TestServer(make_app(_opts(web_dir)), host="127.0.0.1")) as c:
        yield c


async def test_words_come_back_as_wav_speech_the_recogniser_hears(client: TestClient, tmp_path: Path) -> None:  # type: ignore[type-arg]
    response = await client.post("/api/say", json={"text": "  billing\n"})
    assert response.status == 200 and response.content_type == "audio/wav"
    assert response.headers["Cache-Control"] == "no-store"
    (tmp_path / "said.wav").write_bytes(await response.read())
    pcm = read_wav(tmp_path / "said.wav")
    assert pcm.sample_rate == ESPEAK_SAMPLE_RATE
    assert LEAD_IN + 0.2 + TAIL < pcm.duration < LEAD_IN + 2.0 + TAIL
    lead = pcm.array()[: int(LEAD_IN * pcm.sample_rate)]
    assert not lead.any()  # quiet before the words, for the endpointer

    heard: list[object] = []
    recognition = SphinxRecognizer().start(Listen(phrases=("billing", "card", "agent")), heard.append)
    at = 0.0
    for frame in frames(resample(pcm, SPHINX_RATE), 20):
        at += frame.duration
        recognition.feed(frame, at)
    recognition.close()
    assert [e.text for e in heard if isinstance(e, Speech)] == ["billing"]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"text": ""}, 400, "nothing to say"),
        ({"text": " \n\t "}, 400, "nothing to say"),
        ({"text": 1234}, 400, '"text" must be a string'),
        ({"words": "billing"}, 400, '"text" must be a string'),
        (["billing"], 400, '"text" must be a string'),
        ({"text": "bill\x07ing"}, 400, "control characters"),
        ({"text": "a" * (MAX_CHARS + 1)}, 413, f"at most {MAX_CHARS}"),
    ],
)
async def test_text_that_cannot_be_said_is_refused_with_why(
    client: TestClient, body: object, status: int, error: str  # type: ignore[type-arg]
) -> None:
    response = await client.post("/api/say", json=body)
    assert response.status == status
    assert error in (await response.json())["error"]


async def test_the_longest_text_allowed_is_said(client: TestClient) -> None:  # type: ignore[type-arg]
    response = await client.post("/api/say", json={"text": ("one two " * 40)[:MAX_CHARS]})
    assert response.status == 200 and response.content_type == "audio/wav"


async def test_only_json_is_taken(client: TestClient) -> None:  # type: ignore[type-arg]
    # A form or text/plain POST is what another site's page can send without a CORS preflight.
    response = await client.post("/api/say", data="billing", headers={"Content-Type": "text/plain"})
    assert response.status == 415 and "send JSON" in (await response.json())["error"]
    response = await client.post("/api/say", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status == 400 and "not JSON" in (await response.json())["error"]
    huge = b'{"text": "' + b"a" * 10_000 + b'"}'
    response = await client.post("/api/say", data=huge, headers={"Content-Type": "application/json"})
    assert response.status == 413
    response = await client.get("/api/say?text=billing")
    assert response.status in (404, 405)  # speaking is a POST only


async def test_a_voice_that_cannot_speak_is_a_503_saying_so(
    client: TestClient, monkeypatch: pytest.MonkeyPatch  # type: ignore[type-arg]
) -> None:
    # The real voice is installed here; its failure (library missing) is what this stands for.
    def broken(text: str) -> bytes:
        raise SpeechError("the offline voice needs the espeakng-loader package")

    monkeypatch.setattr(say, "say_wav", broken)
    response = await client.post("/api/say", json={"text": "billing"})
    assert response.status == 503
    assert "cannot speak: the offline voice needs the espeakng-loader" in (await response.json())["error"]


def test_check_text_joins_whitespace_and_keeps_the_words() -> None:
    assert check_text("  four\n three\ttwo  one ") == "four three two one"
    with pytest.raises(SayRefused) as refused:
        check_text("x" * (MAX_CHARS + 1))
    assert refused.value.status == 413

