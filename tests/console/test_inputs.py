"""The caller's inputs: a parsed key script played against the channel on the virtual clock."""

from __future__ import annotations

import asyncio

from ivrkit.channel import Hangup, Key
from ivrkit.console.inputs import run_key_script
from ivrkit.console.script import parse_key_script
from tests.console.helpers import Phone


async def test_key_script_runs_on_the_virtual_clock() -> None:
    phone = Phone()
    steps = parse_key_script("1,wait 3s,42#,hangup,7")
    task = asyncio.ensure_future(run_key_script(steps, phone.channel, phone.clock))
    await asyncio.sleep(0)
    assert [(e.digit, e.at) for e in phone.events if isinstance(e, Key)] == [("1", 0.0)]
    phone.clock.advance(3)
    await task
    keys = [(e.digit, e.at) for e in phone.events if isinstance(e, Key)]
    assert keys == [("1", 0.0), ("4", 3.0), ("2", 3.0), ("#", 3.0)]
    assert isinstance(phone.events[-1], Hangup)  # and the 7 after hangup was never pressed


async def test_say_in_a_key_script_is_heard_only_while_the_call_listens() -> None:
    from ivrkit.channel import Listen, Speech, SpeechStarted

    phone = Phone()
    await run_key_script(parse_key_script("say: billing"), phone.channel, phone.clock)
    assert phone.events == [] and "not heard: this state takes keys only" in phone.text
    phone.channel.listen(Listen(phrases=("billing",)))
    await run_key_script(parse_key_script('"billing please'), phone.channel, phone.clock)
    assert phone.events == [SpeechStarted(0.0), Speech("billing please", 0.0)]
