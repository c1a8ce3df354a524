"""The loader end to end: a full flow becomes the expected immutable model; includes, prompts,
load errors; and a property test that random input only ever yields a FlowError or a Flow."""

from __future__ import annotations

import dataclasses
import logging
import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivrkit.errors import FlowError, FlowLoadError, FlowValidationError
from ivrkit.flow.conditions import Condition
from ivrkit.flow.loader import check_flow, check_flow_text, load_flow, load_flow_text
from ivrkit.flow.model import Settings
from ivrkit.flow.spec import SECTIONS
from ivrkit.prompts import PromptPart
from tests.flow.helpers import GOOD_FLOW

ROOT = Path(__file__).resolve().parents[2]


def test_good_flow_builds_the_expected_model() -> None:
    result = check_flow_text(GOOD_FLOW, "acme.yaml")
    assert result.issues == (), [i.format() for i in result.issues]
    flow = result.flow
    assert flow is not None
    assert (flow.name, flow.start, flow.error_state) == ("acme-bank", "main", "sorry")
    assert list(flow.states)[:3] == ["main", "pin", "balance"]
    main = flow.states["main"]
    assert main.kind == "menu" and main.where == "acme.yaml:13:3"
    assert main.settings == Settings(timeout=4.0, voice="en-us", language="en")
    assert main.menu is not None
    assert dict(main.menu.options) == {"1": "pin", "2": "route", "0": "agent", "A": "out"}
    assert [p.value for p in main.menu.prompt.parts] == ["Welcome to Acme.", "For balances press 1, for cards 2, for an agent 0."]
    assert [p.parts[0].value for p in main.menu.no_input] == ["Sorry, I didn't hear a choice.", "Please press a key now."]
    assert (main.menu.repeat_key, main.menu.back_key, main.menu.on_max_retries) == ("*", None, "goodbye")
    collect = flow.states["pin"].collect
    assert collect is not None
    assert (collect.into, collect.min_digits, collect.max_digits, collect.sensitive, collect.pattern) == ("pin", 4, 4, True, r"\d{4}")
    assert str(collect.validate) == "ivrkit.prompts:template_names" and collect.clear_key == "*" and collect.back_key == "B"
    assert len(collect.no_match) == 2 and flow.states["pin"].on_error == "sorry"
    run = flow.states["balance"].run
    assert run is not None and run.sets == ("balance", "tier") and run.timeout == 2.0 and run.where == "acme.yaml:32:17"
    goto = flow.states["route"].goto
    assert [b.target for b in goto] == ["vip", "main"] and goto[0].condition == Condition.parse("balance > 100 and tier == 'gold'")
    assert goto[1].condition is None
    vip = flow.states["vip"]
    assert vip.say is not None and vip.say.parts == (
        PromptPart("text", "@ is literal here"), PromptPart("silence", "0.5"), PromptPart("digits", "{pin}"), PromptPart("text", "@home"))
    assert vip.settings.barge_in is False and vip.goto[0].target == "main"
    assert flow.states["agent2"].transfer is not None and flow.states["agent2"].transfer.play_dialtone
    assert flow.states["out"].dial is not None and flow.states["out"].dial.to == "+15550100"
    assert flow.states["legacy2"].send_dtmf is not None and flow.states["legacy2"].send_dtmf.pace == 0.3
    assert [str(h) for h in flow.call_start] == ["ivrkit.prompts:template_names"]
    assert flow.states["goodbye"].kind == "hangup"


def test_flow_is_deeply_immutable() -> None:
    flow = load_flow_text(GOOD_FLOW, "acme.yaml")
    assert isinstance(flow.states, MappingProxyType) and isinstance(flow.prompts, MappingProxyType)
    with pytest.raises(TypeError):
        flow.states["x"] = flow.states["main"]  # type: ignore[index]
    with pytest.raises(TypeError):
        flow.states["main"].menu.options["9"] = "x"  # type: ignore[index, union-attr]
    with pytest.raises(dataclasses.FrozenInstanceError):
        flow.states["main"].name = "x"  # type: ignore[misc]
    assert isinstance(flow.states["main"].menu.no_input, tuple)  # type: ignore[union-attr]


@pytest.mark.parametrize("path", sorted((ROOT / "flows").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_flows_load_without_errors(path: Path) -> None:
    result = check_flow(path)
    assert result.errors == (), "\n".join(i.format() for i in result.errors)


def test_load_flow_logs_warnings_and_returns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ivrkit.flow"):
        flow = load_flow_text("start: a\nstates:\n  a: {say: '{who}', hangup: true}\n", "w.yaml")
    assert flow.start == "a"
    assert "w.yaml:3:12: warning: variable 'who' is used but nothing sets it" in caplog.text


def test_includes_merge_states_and_prompts(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "common.yaml").write_text(textwrap.dedent("""\
        include: [more.yaml]
        prompts: {bye: "Goodbye."}
        states:
          goodbye: {say: "@bye", hangup: true}
        """))
    (tmp_path / "common" / "more.yaml").write_text("states:\n  extra: {say: '@hello', next: goodbye}\n")
    (tmp_path / "main.yaml").write_text(textwrap.dedent("""\
        start: main
        include: [common/common.yaml, common/more.yaml]
        prompts: {hello: "Hello."}
        states:
          main: {menu: {prompt: "@hello", options: {"1": goodbye, "2": extra}}}
        """))
    flow = load_flow(tmp_path / "main.yaml")
    assert list(flow.states) == ["main", "goodbye", "extra"]
    assert flow.states["goodbye"].say.parts[0].value == "Goodbye."  # type: ignore[union-attr]
    assert flow.states["goodbye"].where.endswith("common/common.yaml:4:3")
    assert len(flow.files) == 3


def test_include_name_clash_names_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("states:\n  main: {say: A, hangup: true}\n")
    (tmp_path / "main.yaml").write_text("start: main\ninclude: a.yaml\nstates:\n  main: {say: M, hangup: true}\n")
    result = check_flow(tmp_path / "main.yaml")
    clash = [i for i in result.issues if i.code == "duplicate-state"]
    assert len(clash) == 1
    assert clash[0].file.endswith("a.yaml") and clash[0].line == 2
    assert f"{tmp_path / 'main.yaml'}:4:3" in clash[0].message


def test_include_cycle_and_missing_include_are_load_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("include: [b.yaml]\nstates: {x: {say: x, hangup: true}}\n")
    (tmp_path / "b.yaml").write_text("include: [a.yaml]\n")
    (tmp_path / "main.yaml").write_text("start: x\ninclude: [a.yaml]\nstates: {}\n")
    with pytest.raises(FlowLoadError) as exc:
        load_flow(tmp_path / "main.yaml")
    issue = exc.value.issues[0]
    assert issue.code == "include-cycle" and "a.yaml -> b.yaml -> a.yaml" in issue.message
    assert issue.file.endswith("b.yaml") and issue.line == 1
    (tmp_path / "main.yaml").write_text("start: x\ninclude:\n  - nope.yaml\nstates: {x: {say: x, hangup: true}}\n")
    with pytest.raises(FlowLoadError) as exc:
        load_flow(tmp_path / "main.yaml")
    issue = exc.value.issues[0]
    assert (issue.code, issue.line, issue.file) == ("include-missing", 3, str(tmp_path / "main.yaml"))


def test_included_file_may_not_set_top_level_keys(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("start: x\nstates:\n  b: {say: B, hangup: true}\n")
    (tmp_path / "main.yaml").write_text("start: b\ninclude: [a.yaml]\n")
    result = check_flow(tmp_path / "main.yaml")
    assert [(i.code, i.line) for i in result.errors] == [("not-in-include", 1)]


def test_unreadable_and_unparseable_files() -> None:
    with pytest.raises(FlowLoadError) as exc:
        load_flow("/nonexistent/flow.yaml")
    assert exc.value.issues[0].code == "file-not-found" and "/nonexistent/flow.yaml" in str(exc.value)
    with pytest.raises(FlowLoadError) as exc:
        load_flow_text("start: [\n", "x.yaml")
    assert exc.value.issues[0].code == "yaml-syntax" and exc.value.issues[0].file == "x.yaml"
    for text in ("", "just a string", "- a list\n"):
        with pytest.raises(FlowValidationError):
            load_flow_text(text, "x.yaml")


@pytest.mark.parametrize("text", [
    "start: a\ndefaults: {retries: " + "9" * 5000 + "}\nstates: {a: {say: x, hangup: true}}\n",
    "start: a\ndefaults: {timeout: " + "9" * 5000 + "}\nstates: {a: {say: x, hangup: true}}\n",
    "start: a\ndefaults: {timeout: 1e999}\nstates: {a: {say: x, hangup: true}}\n",
    'start: a\ninclude: ["x\\0y.yaml"]\nstates: {a: {say: x, hangup: true}}\n',
    'start: a\nstates: {a: {say: [{audio: "x\\0.wav"}], hangup: true}}\n',
    "start: a\nstates: {a: {goto: [{if: '" + "(" * 150 + "x" + ")" * 150 + "', then: a}, {else: a}]}}\n",
    "start: a\nstates: {a: {goto: [{if: '" + "not " * 240 + "x', then: a}, {else: a}]}}\n",
    "start: a\nstates: &s {a: {say: x, next: a}, b: *s}\n",
    "start: a\n---\nstart: b\n",
    "[" * 2000 + "]" * 2000,
])
def test_hostile_values_give_flow_errors(text: str) -> None:
    with pytest.raises(FlowError):
        load_flow_text(text, "h.yaml", check_hooks=False)


def test_prompt_reference_cycle_is_reported() -> None:
    result = check_flow_text("start: a\nprompts: {x: '@y', y: ['hi', '@x']}\nstates:\n  a: {say: '@x', hangup: true}\n", "p.yaml")
    assert any(i.code == "prompt-cycle" and i.line == 2 for i in result.errors)


# -- property test: whatever comes in, the loader answers with a Flow or a FlowError ----------

_WORDS = sorted({k.name for keys in SECTIONS.values() for k in keys} | {"main", "a", "b", "1", "*", "#", "012"})
_scalars = st.one_of(st.sampled_from(_WORDS), st.integers(-5, 50), st.booleans(), st.none(),
                     st.sampled_from(["5s", "250ms", "x", "@a", "{a}", "m:f", "a == 1", "[", "#"]), st.text(max_size=8))
_docs = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(_WORDS), st.integers(0, 20)), inner, max_size=5)),
    max_leaves=30)
_snippets = st.sampled_from([
    "start: ", "states:\n", "  main:\n", "    menu:\n", "      options: ", '{"1": a, #: b}', "*: x", "&a ", "*a",
    "012: x\n", "      prompt: Hi\n", "    collect: {into: p}\n", "  a: {say: x, next: a}\n", "\t", "- ", ": ", "\n",
    "goto: [{if: 'x ==', then: a}]\n", "include: [x.yaml]\n", "'", '"', "{", "}", "[", "]", "? ", "!!python/object:os.system ",
])


def _assert_only_flow_errors(text: str) -> None:
    result = check_flow_text(text, "fuzz.yaml", check_hooks=False)
    assert result.flow is not None or result.errors
    for issue in result.issues:
        assert issue.file == "fuzz.yaml" and issue.line >= 1 and issue.col >= 1 and issue.code
        lines = text.splitlines() or [""]
        # the position is inside the file, and the line shown under the message is that line
        assert issue.line <= len(lines) + 1, (issue.format(), text)
        if issue.source_line is not None and issue.line <= len(lines):
            assert issue.source_line == lines[issue.line - 1], (issue.format(), text)
    try:
        load_flow_text(text, "fuzz.yaml", check_hooks=False)
    except FlowError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_docs)
def test_random_yaml_documents_only_give_flow_errors(doc: object) -> None:
    _assert_only_flow_errors(yaml.safe_dump({"start": "main", "states": doc}))
    _assert_only_flow_errors(yaml.safe_dump(doc))


@settings(max_examples=200, deadline=None)
@given(st.lists(_snippets, max_size=25))
def test_random_yaml_fragments_only_give_flow_errors(parts: list[str]) -> None:
    _assert_only_flow_errors("".join(parts))


_GOOD_LINES = GOOD_FLOW.splitlines()
_values = st.one_of(st.sampled_from(["null", "[]", "{}", "'#'", "'*'", "012", "x", "1e999", "-1", "yes", "'@menu'",
                                     "[{else: main}]", "{hook: m:f}", "'{'", "a:b:c", '"\\x00"', "[[x]]"]),
                    st.integers(-3, 30).map(str), st.text(alphabet="ab1#*:{}[]@ '", max_size=6))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_GOOD_LINES) - 1), _values), min_size=1, max_size=3))
def test_mutated_good_flow_only_gives_flow_errors(edits: list[tuple[int, str]]) -> None:
    """Near-valid files reach the deep parts of the builder that random documents rarely do."""
    lines = list(_GOOD_LINES)
    for index, value in edits:
        head, sep, _tail = lines[index].partition(": ")
        lines[index] = head + sep + value if sep else value
    _assert_only_flow_errors("\n".join(lines) + "\n")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_give_flow_errors(data: bytes) -> None:
    _assert_only_flow_errors(data.decode("utf-8", errors="replace"))


def test_dial_amd_true_is_asterisk_defaults_and_a_mapping_overrides_them(tmp_path: Path) -> None:
    from ivrkit.flow.model import Amd
    from ivrkit.voice.amd import AmdSettings

    path = tmp_path / "amd.yaml"
    path.write_text(
        "start: a\nstates:\n"
        "  a: {dial: {to: '+1555', amd: true}, next: b}\n"
        "  b: {dial: {to: '+1555', amd: {greeting: 2s, maximum_number_of_words: 2, into: who, wait_for_beep: 30s}}, next: c}\n"
        "  c: {say: '{amd} {amd_cause} {who} {who_cause} {who_beep}', hangup: true}\n")
    result = check_flow(path)
    assert result.issues == (), [i.format() for i in result.issues]
    assert result.flow is not None
    assert result.flow.states["a"].dial is not None and result.flow.states["a"].dial.amd == Amd()
    b = result.flow.states["b"].dial
    assert b is not None and b.amd == Amd(AmdSettings(greeting=2000, maximum_number_of_words=2), "who", 30.0)


def test_dial_amd_problems_point_at_the_value(tmp_path: Path) -> None:
    path = tmp_path / "amd.yaml"
    path.write_text(
        "start: a\nstates:\n"
        "  a: {dial: {to: '+1555', amd: {greeting: 1500, min_word_length: 5ms, silence_threshold: 0}}, next: b}\n"
        "  b: {dial: {to: '+1555', amd: maybe}, hangup: true}\n")
    issues = [(i.line, i.code, i.message) for i in check_flow(path).issues]
    assert (3, "bad-value", "amd greeting needs a unit: 1500 would be read as seconds") in issues
    assert (3, "bad-value", "amd min_word_length must be at least 20ms (one audio frame)") in issues
    assert (3, "bad-value", "silence_threshold must be at least 1, not 0") in issues
    assert (4, "bad-type", "amd must be true or false, not a string") in issues
