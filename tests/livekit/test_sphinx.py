"""The offline recogniser on real eSpeak NG speech: its grammar, what it hears, when it says so."""

from __future__ import annotations

from functools import cache

import pytest

from ivrkit.channel import Listen, Speech, SpeechStarted
from ivrkit.livekit.sphinx import FAR_END_DECODER, SPHINX_RATE, SphinxRecognizer, grammar
from ivrkit.spoken import choose
from ivrkit.voice.audio import Pcm, concat, frames, resample, silence
from ivrkit.voice.speech import EspeakVoice

MENU = Listen(phrases=("billing", "bills", "card payments", "agent"))


@cache
def recognizer() -> SphinxRecognizer:
    return SphinxRecognizer()


def spoken(text: str) -> tuple[Pcm, float]:
    """`text` said by eSpeak NG with 0.5 s of silence before and 1.2 s after; and when it ended."""
    speech = resample(EspeakVoice("en-us").synthesize(text), SPHINX_RATE)
    return concat([silence(0.5), speech, silence(1.2)], sample_rate=SPHINX_RATE), 0.5 + speech.duration


def hear(request: Listen, pcm: Pcm) -> list[SpeechStarted | Speech]:
    out: list[SpeechStarted | Speech] = []
    recognition = recognizer().start(request, out.append)
    at = 0.0
    for frame in frames(pcm, 20):  # as ParticipantAudio hands them over
        at += frame.duration
        recognition.feed(frame, at)
    recognition.close()
    return out


def test_the_grammar_is_the_requests_words_or_so_many_digits() -> None:
    text = grammar(MENU)
    assert text is not None and "<phrase> = agent | billing | bills | card payments;" in text
    digits = grammar(Listen(digits=True, min_digits=2, max_digits=4))
    assert digits is not None and "<digits> = <digit> <digit> [<digit>] [<digit>];" in digits
    assert "oh" in digits and grammar(Listen()) is None


@pytest.mark.parametrize("said", ["billing", "bills"])
def test_a_menu_word_is_heard_once_its_speech_has_ended(said: str) -> None:
    pcm, end = spoken(said)
    events = hear(MENU, pcm)
    assert [type(e) for e in events] == [SpeechStarted, Speech]
    start, result = events
    assert isinstance(result, Speech) and result.text == said
    assert 0.3 < start.at < end  # the endpointer's window: it knows a little after speech began
    assert end < result.at < end + 1.0  # its hangover and the pause allowed between words


def test_spoken_digits_in_a_four_digit_grammar() -> None:
    """(Which digit strings eSpeak's voices get right is bench/speech.py's question, not this one's.)"""
    pcm, _ = spoken("two five eight oh")
    events = hear(Listen(digits=True, min_digits=4, max_digits=4), pcm)
    assert [e.text for e in events if isinstance(e, Speech)] == ["two five eight oh"]


def test_silence_is_not_speech_and_a_word_it_cannot_say_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    assert hear(MENU, silence(3.0, sample_rate=SPHINX_RATE)) == []
    pcm, _ = spoken("billing")
    events = hear(Listen(phrases=("billing", "qwzxv")), pcm)
    assert [e.text for e in events if isinstance(e, Speech)] == ["billing"]
    assert "no pronunciation for 'qwzxv'" in caplog.text


def test_closing_mid_utterance_emits_nothing_more() -> None:
    pcm, end = spoken("card payments")
    out: list[SpeechStarted | Speech] = []
    recognition = recognizer().start(MENU, out.append)
    at = 0.0
    for frame in frames(pcm, 20):
        at += frame.duration
        recognition.feed(frame, at)
        if out and at > end - 0.2:
            recognition.close()
    assert [type(e) for e in out] == [SpeechStarted]


FAR = Listen(phrases=("for billing", "invalid entry", "please hold"), other=True)


@cache
def far_recognizer() -> SphinxRecognizer:
    return SphinxRecognizer(decoder_options=FAR_END_DECODER)


def test_a_far_end_grammar_has_other_words_around_its_phrases_but_none_that_spell_them() -> None:
    text = grammar(FAR)
    assert text is not None and "public <answer> = [<other>] <phrase> [<other>] | <other>;" in text
    other = text.split("<other> = (")[1].split(")")[0].split(" | ")
    assert "press" in other and "hold" not in other  # a phrase's own word is no filler
    assert "in" not in other and "valid" not in other  # "in" + "valid" would spell "invalid"


@pytest.mark.parametrize(("prompt", "phrase"), [
    ("Sorry, invalid entry.", "invalid entry"),
    ("Welcome to Acme. For billing press 2.", "for billing"),
    ("That is not a valid choice.", None),
])
def test_the_far_end_recogniser_hears_a_phrase_among_other_words_and_no_phrase_in_other_speech(
        prompt: str, phrase: str | None) -> None:
    pcm, _ = spoken(prompt)
    out: list[SpeechStarted | Speech] = []
    recognition = far_recognizer().start(FAR, out.append)
    at = 0.0
    for frame in frames(resample(pcm, 8000), 20):  # a SIP leg's rate
        at += frame.duration
        recognition.feed(frame, at)
    recognition.close()
    said = [choose({p: (p,) for p in FAR.phrases}, e.text) for e in out if isinstance(e, Speech)]
    assert said and (phrase in said if phrase else set(said) == {None}), [e for e in out if isinstance(e, Speech)]
