"""Replaying recorded calls: the same flow matches, a changed one diverges where a caller would
notice, masked keys are filled only from what the test gives, both trace formats are read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ivrkit.channel import CallerInfo
from ivrkit.errors import ReplayError
from ivrkit.flow.loader import load_flow_text
from ivrkit.livekit.trace import TraceCopier, TraceWriter
from ivrkit.testing import FakeChannel, FlowTester, VirtualClock
from ivrkit.trace import Trace

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "flows" / "bank.yaml"
CALLER = CallerInfo(number="+15550100", called_number="+15550199", call_id="call-1")


def bank(tmp_path: Path, *changes: tuple[str, str]) -> Path:
    """flows/bank.yaml with `changes` (old, new) made, its hooks found where they are."""
    text = BANK.read_text().replace("python_path: [../examples]", f"python_path: [{ROOT / 'examples'}]")
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"bank-{len(list(tmp_path.glob('bank-*.yaml')))}.yaml"
    path.write_text(text)
    return path


async def record_balance_then_agent(**kw: Any) -> Trace:
    """A caller who knows the menu: 1, account, PIN (with the habitual #), hears the balance and
    the menu again, waits 4 s after it, then asks for an agent."""
    async with FlowTester(BANK, caller=CALLER, **kw) as t:
        await t.advance(1.5)
        await t.press("1")  # barges in on the menu
        await t.press("12345678#", gap=0.3)
        await t.press("4321", gap=0.3)
        t.expect_state("balance")
        await t.until_input()  # the balance, then the whole menu
        t.expect_state("main")
        await t.advance(4)
        await t.press("0")
        await t.advance(10)
        t.expect_ended("transfer")
        return t.trace


async def test_the_same_flow_replays_to_a_match(tmp_path: Path) -> None:
    trace = await record_balance_then_agent()
    path = tmp_path / "call.jsonl"
    path.write_text(trace.to_jsonl())
    assert "4321" not in path.read_text()
    for source in (path, trace, list(trace), [json.loads(line) for line in path.read_text().splitlines()]):
        result = await FlowTester.replay(source, BANK, pin="4321")
        assert not result.diverged, result.report()
        assert result.report().endswith("matches (6 states, 6 prompts, ended by transfer in state 'agent')")
    # the replay went the same way step by step, at the same moments
    replayed = [(r.kind, r.state, round(r.t, 6)) for r in result.replayed if r.kind != "key"]
    assert replayed == [(e.kind, e.state, round(e.t, 6)) for e in trace if e.kind != "key"]


async def test_a_re_routed_key_diverges_at_the_state(tmp_path: Path) -> None:
    trace = await record_balance_then_agent()
    changed = bank(tmp_path, ('options: {"1": account, "2": lost_card, "0": agent}',
                              'options: {"1": lost_card, "2": account, "0": agent}'))
    result = await FlowTester.replay(trace, changed, pin="4321")
    assert result.diverged and result.divergence is not None and result.divergence.what == "state"
    report = result.report()
    assert "diverged (state) at t=1.500 s recorded / 1.500 s now" in report
    assert "  recorded: entered state 'account'   (t=1.500)" in report
    assert "  now:      entered state 'lost_card'   (t=1.500)" in report
    # the records around it, on each side, with the diverging one marked
    assert ">   t=   1.500 [account] state where=" in report and ">   t=   1.500 [lost_card] state where=" in report


async def test_a_changed_prompt_diverges_at_the_prompt(tmp_path: Path) -> None:
    trace = await record_balance_then_agent()
    changed = bank(tmp_path, ('"Your balance is {balance} dollars."', '"You have {balance} dollars."'))
    result = await FlowTester.replay(trace, changed, pin="4321")
    assert result.divergence is not None and result.divergence.what == "prompt"
    assert "recorded: prompt 'Your balance is 1234.56 dollars.' (played)" in result.report()
    assert "now:      prompt 'You have 1234.56 dollars.' (played)" in result.report()


async def test_a_removed_state_diverges_where_the_caller_went_there(tmp_path: Path) -> None:
    async with FlowTester(BANK, caller=CALLER) as t:
        await t.press("2")
        await t.until_input()
        await t.hangup()
        recorded = t.trace
    changed = bank(tmp_path, ('"2": lost_card, ', ""), ("  lost_card:\n    run: {hook: acme_bank:block_card, sets: [reference]}\n"
                                                         '    say: ["Your card is now blocked. Your reference number is", '
                                                         '{digits: "{reference}"}]\n    next: main\n', ""))
    result = await FlowTester.replay(recorded, changed)
    assert result.divergence is not None
    assert result.divergence.recorded is not None and result.divergence.recorded.text == "entered state 'lost_card'"
    assert result.divergence.now is not None and result.divergence.now.text == "prompt 'That is not a valid choice.' (played)"


async def test_an_outcome_that_changed(tmp_path: Path) -> None:
    trace = await record_balance_then_agent()
    changed = bank(tmp_path, ('  agent:\n    transfer:\n      to: "sip:agents@pbx.example.com"\n'
                              '      announce: "Please hold while we connect you to an agent."\n',
                              '  agent: {say: "Agents are busy.", hangup: true}\n'))
    result = await FlowTester.replay(trace, changed, pin="4321")
    assert result.divergence is not None and result.divergence.what == "prompt"  # the caller hears it first
    assert "Agents are busy." in result.report()


async def test_masked_keys_need_their_digits_and_are_never_shown(tmp_path: Path) -> None:
    trace = await record_balance_then_agent()
    with pytest.raises(ReplayError) as e:
        await FlowTester.replay(trace, BANK)
    assert "state 'pin': 1 entry(ies) into 'pin' of 4 key(s)" in str(e.value)
    assert "--set pin=DIGITS" in str(e.value) and "--keys-for pin=KEYS" in str(e.value)
    with pytest.raises(ReplayError, match=r"--keys-for pin=\*\*: the recorded call has 4 masked key\(s\)"):
        await FlowTester.replay(trace, BANK, keys_for={"pin": "43"})
    with pytest.raises(ReplayError, match="--set pin=... has 3 digit"):
        await FlowTester.replay(trace, BANK, pin="432")
    assert not (await FlowTester.replay(trace, BANK, keys_for={"pin": "4321"})).diverged
    # a wrong PIN: the hook answers differently now, and the report says so (masked)
    result = await FlowTester.replay(trace, BANK, pin="1111")
    assert result.divergence is not None and result.divergence.now is not None
    assert result.divergence.now.text == "prompt 'That PIN is not correct.' (played)"
    assert "acme_bank:check_pin answered differently: recorded True, now False" in result.report()
    assert "1111" not in result.report() and "4321" not in result.report()


async def test_an_entry_that_ended_with_the_terminator_gets_it_back() -> None:
    async with FlowTester(BANK, caller=CALLER) as t:
        await t.press("1")
        await t.press("12345678")  # max_digits: no # needed
        await t.press("1111#")  # a wrong PIN, but four digits and # in the keys: a terminator entry?
        await t.until_input()
        await t.press("4321")
        await t.until_input()
        await t.hangup()
        recorded = t.trace
    # PIN entries are four digits (max_digits): 1111 ends it, the # is the habitual terminator
    with pytest.raises(ReplayError, match="2 entry"):
        await FlowTester.replay(recorded, BANK)
    result = await FlowTester.replay(recorded, BANK, keys_for={"pin": "11114321"})
    assert not result.diverged, result.report()
    # --set gives every entry the same value: the first one is then right, unlike the recording
    assert (await FlowTester.replay(recorded, BANK, pin="4321")).diverged


LEGAL = """
flow: legal
start: terms
states:
  terms: {say: "Calls are recorded. Terms apply.", barge_in: false, next: main}
  main:
    menu: {prompt: "For your account press 1.", options: {"1": pin}, no_match: "No such choice."}
  pin:
    collect: {prompt: "Your PIN.", into: pin, min_digits: 4, max_digits: 4, sensitive: true}
    next: bye
  bye: {say: "Bye.", hangup: true}
"""


async def test_a_masked_key_no_state_used_is_a_placeholder() -> None:
    flow = load_flow_text(LEGAL)
    async with FlowTester(flow, caller=CALLER) as t:
        await t.press("99", gap=0.5)  # through the legal text: kept; then 9 is no choice, the other 9 dropped
        await t.until_input()
        await t.press("1")
        await t.press("4321")
        await t.advance(5)
        t.expect_ended("hangup")
        recorded = t.trace
    assert [k.data["digit"] for k in recorded.keys()][:2] == ["9", "?"]  # the flow has a PIN: masked
    result = await FlowTester.replay(recorded, flow, pin="4321")
    assert not result.diverged, result.report()
    assert "1 masked key(s) no state used (in main) were replayed as the placeholder '?'" in result.notes[0]
    assert not (await FlowTester.replay(recorded, flow, pin="4321", keys_for={"main": "9"})).diverged


async def test_keys_go_in_relative_to_what_the_caller_heard(tmp_path: Path) -> None:
    """A worker's hook took 3 s of real time that a replay does not: the caller's key 4 s after
    the menu ended is still 4 s after it (a bare recorded time would be 7 s: after the 5 s
    no-input timeout)."""
    trace = await record_balance_then_agent()
    rows = [e.to_dict() for e in trace]
    hook = next(i for i, r in enumerate(rows) if r.get("hook") == "acme_bank:lookup_balance")
    for r in rows[hook:]:
        r["t"] += 3.0
        if "arrived" in r:
            r["arrived"] += 3.0
    result = await FlowTester.replay(rows, BANK, pin="4321")
    assert not result.diverged, result.report()
    replayed = list(result.replayed)
    zero = next(i for i, r in enumerate(replayed) if r.kind == "key" and r.data["digit"] == "0")
    menu_end = next(r for r in reversed(replayed[:zero]) if r.kind == "prompt_end")
    assert replayed[zero].data["arrived"] - menu_end.t == pytest.approx(4.0)
    recorded_zero = next(r for r in rows if r["kind"] == "key" and r["digit"] == "0")
    assert recorded_zero["arrived"] - replayed[zero].data["arrived"] == pytest.approx(3.0)


def worker_file(tmp_path: Path, trace: Trace, start: float, *, clock: bool = True) -> Path:
    """`trace` as the worker writes it (`ivrkit.livekit.job`): the `call` record, adapter
    records without seq, the call's records copied by `TraceCopier`, `job_end`."""
    writer = TraceWriter(tmp_path, "room-1", "AJ_1", start=start)
    extra = {"clock": start} if clock else {}
    writer.write("call", at=start, room="room-1", caller="sip_+15550100", sip=True, flow="acme-bank",
                 route="default flow", caller_info={"number": CALLER.number}, **extra)
    writer.write("caller_subscribed", at=start + 0.2, track="TR_1")
    TraceCopier(writer, trace).copy()
    writer.write("job_end", at=trace.events[-1].t + 0.1, reason="caller left")
    writer.close()
    return writer.path


async def test_a_worker_trace_with_a_real_voice_replays(tmp_path: Path) -> None:
    """The worker's format, its clock 1000 s in, prompts spoken slower than FakeChannel's
    estimate: the recorded durations keep barge-in and the no-input timing as they were."""
    clock = VirtualClock(1000.25)
    async with FlowTester(BANK, channel=FakeChannel(clock, CALLER, seconds_per_char=0.1)) as t:
        await t.advance(12.0)  # the menu takes 17 s in this voice, 10.2 at FakeChannel's 0.06: cut short
        await t.press("0")
        await t.advance(10)
        t.expect_ended("transfer")
        recorded = t.trace
    path = worker_file(tmp_path, recorded, start=1000.0)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0]["event"] == "call" and rows[-1]["event"] == "job_end"
    result = await FlowTester.replay(path, BANK)
    assert not result.diverged, result.report()
    assert [r.kind for r in result.recording.records][:2] == ["call_start", "transition"]
    assert result.recording.caller.number == CALLER.number and result.recording.flow_name == "acme-bank"
    key = next(r for r in result.replayed if r.kind == "key")
    assert key.data["arrived"] == pytest.approx(12.0) and key.data["consumed"] == "main"
    # an older worker file (no clock in its `call` record): key times estimated, and said so
    old = await FlowTester.replay(worker_file(tmp_path / "old", recorded, start=1000.0, clock=False), BANK)
    assert not old.diverged and "key times are estimated" in old.notes[0]


async def test_keys_at_the_edges_of_prompts_in_a_worker_file(tmp_path: Path) -> None:
    """The worker file rounds times to 0.1 ms and a barge-in's prompt end is recorded at its
    key's time: a key that cut a prompt cuts it again, a key pressed as a prompt ended waits
    for the end, and a hang-up during a prompt cuts it as it did."""
    async with FlowTester(BANK, channel=FakeChannel(VirtualClock(1000.37), CALLER, seconds_per_char=0.1)) as t:
        await t.advance(1.3)
        await t.press("9")  # cuts the menu
        await t.until_input()  # the retry prompt and the whole menu again
        await t.press("1")  # the instant the menu ended
        await t.advance(1.0)
        await t.hangup()  # in the middle of the account prompt
        recorded = t.trace
    ends = [(e.data["id"], e.data["interrupted"]) for e in recorded.of_kind("prompt_end")]
    assert ends == [(1, True), (2, False), (3, False), (4, True)]
    rows = [json.loads(line) for line in worker_file(tmp_path, recorded, start=999.91).read_text().splitlines()]
    one = next(r for r in rows if r["event"] == "key" and r["digit"] == "1")
    one["arrived"] -= 0.00004  # as the file's rounding of `t` can make it look: before the menu's end
    result = await FlowTester.replay(rows, BANK)
    assert not result.diverged, result.report()


async def test_a_call_the_worker_stopped_is_stopped_again_at_its_moment(tmp_path: Path) -> None:
    """A call cut short by its worker (`ivrkit start` past its drain, `ivrkit dev` stopped)
    ends `stopped` in its trace; its replay stops at the same point, for the same reason,
    instead of running on to the horizon and diverging at the end."""
    async with FlowTester(BANK, caller=CALLER) as t:
        await t.press("1")
        await t.press("1234", gap=0.3)  # half-way through the account number
        await t.stop("the worker stopped (drain timeout)")
        t.expect_ended("stopped")
        recorded = t.trace
    for source in (recorded, worker_file(tmp_path, recorded, start=42.0)):
        result = await FlowTester.replay(source, BANK)
        assert not result.diverged, result.report()
        assert "ended by stopped in state 'account'" in result.report()
        end = result.replayed[-1]
        assert end.data == {"ended_by": "stopped", "reason": "the worker stopped (drain timeout)"}
        assert round(end.t, 3) == round(recorded.events[-1].t, 3)


async def test_a_call_stopped_before_it_began_replays_to_a_match(tmp_path: Path) -> None:
    """The worker was already stopping when the call came (`Call.stop` before `run`): its trace
    is call_start, call_end. The replay stops it before it runs too — no greeting to diverge on."""
    from ivrkit.call import Call
    from ivrkit.flow.loader import load_flow
    from ivrkit.machine import FlowMachine

    call = Call(FlowMachine(load_flow(bank(tmp_path))), FakeChannel(VirtualClock(), CALLER))
    call.stop("the worker stopped")
    await call.run()
    assert [e.kind for e in call.trace] == ["call_start", "call_end"]
    for source in (call.trace, worker_file(tmp_path, call.trace, start=7.0)):
        result = await FlowTester.replay(source, BANK)
        assert not result.diverged, result.report()
        assert [r.kind for r in result.replayed] == ["call_start", "call_end"]
        assert result.replayed[-1].data == {"ended_by": "stopped", "reason": "the worker stopped"}


async def test_a_recording_on_another_flow_is_named(tmp_path: Path) -> None:
    async with FlowTester(BANK, caller=CALLER) as t:
        await t.hangup()
    result = await FlowTester.replay(worker_file(tmp_path, t.trace, start=5.0), bank(tmp_path, ("flow: acme-bank", "flow: acme-bank-2")))
    assert "recorded on flow 'acme-bank' and replayed against 'acme-bank-2'" in result.notes[-1]


async def test_a_flow_that_no_longer_ends_is_hung_up_after_the_horizon(tmp_path: Path) -> None:
    async with FlowTester(BANK, caller=CALLER) as t:
        await t.press("0")
        await t.advance(10)
        recorded = t.trace
    waits = bank(tmp_path, ('options: {"1": account, "2": lost_card, "0": agent}', 'options: {"1": account, "2": lost_card, "0": main}'),
                 ("retries: 3", "retries: 100"))
    result = await FlowTester.replay(recorded, waits, horizon=30)
    assert result.divergence is not None and "the replay hung up" in result.notes[-1]


def _docs_section() -> str:
    text = (ROOT / "docs" / "testing.md").read_text()
    return text[text.index("### Replay a real call"):text.index("## 2. Against a real livekit-server")]


async def test_the_docs_pytest_example_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/testing.md "Replay a real call": its pytest example passes as written."""
    code = _docs_section().split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/testing.md", "exec"), namespace)
    tests = [v for k, v in namespace.items() if k.startswith("test_")]
    assert len(tests) == 1
    await tests[0]()


def test_the_docs_command_prints_what_the_docs_show(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from ivrkit.cli import main

    shown = _docs_section().split("```\n$ ivrkit replay ", 1)[1].split("\n", 1)
    command, output = shown[0].split(), shown[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    assert main(["replay", *command]) == 0
    assert capsys.readouterr().out == output


SPEECH = """\
flow: said
start: main
defaults: {input: [dtmf, speech]}
states:
  main:
    menu:
      prompt: "Say billing, or press 1."
      options: {"1": {to: pin, say: [billing]}, "2": {to: bye, say: [goodbye]}}
  pin:
    collect: {prompt: "Your PIN?", into: pin, min_digits: 4, max_digits: 4, sensitive: true}
    next: bye
  bye: {say: "Goodbye.", hangup: true}
"""


async def test_words_the_caller_said_are_said_again_and_a_spoken_pin_must_be_given(tmp_path: Path) -> None:
    flow = load_flow_text(SPEECH, str(tmp_path / "said.yaml"))
    async with FlowTester(flow) as t:
        await t.advance(0.5)
        await t.say("billing please")  # barges in
        await t.until_input()
        await t.say("four three two one")
        await t.advance(5)
        t.expect_ended("hangup")
    assert "4321" not in t.trace.to_jsonl() and "four three" not in t.trace.to_jsonl()
    result = await FlowTester.replay(t.trace, flow, pin="4321")
    assert not result.diverged, result.report()
    with pytest.raises(ReplayError, match="the caller said a sensitive entry, masked in the trace; give it with --set pin="):
        await FlowTester.replay(t.trace, flow)
    changed = load_flow_text(SPEECH.replace("say: [billing]", "say: [bills]"), str(tmp_path / "said.yaml"))
    result = await FlowTester.replay(t.trace, changed, pin="4321")
    assert result.diverged, result.report()
