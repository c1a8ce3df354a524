"""The worker's flow set: every flow checked once at startup (ivrkit.livekit.flows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivrkit.livekit.flows import FlowSetError, build_flow_set, flow_files, flow_version, load_checked
from ivrkit.livekit.prompt_audio import fixed_prompt_parts
from ivrkit.livekit.settings import WorkerOptions
from ivrkit.prompts import PromptPart

REPO = Path(__file__).resolve().parents[2]
GOOD = 'flow: {name}\nstart: main\nstates:\n  main: {{say: "Hello {{caller_number}}.", next: bye}}\n  bye: {{say: "Goodbye.", hangup: true}}\n'


def write(dir: Path, file: str, text: str) -> Path:
    path = dir / file
    path.write_text(text)
    return path


def test_a_folder_is_its_top_level_yaml_files(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", GOOD.format(name="b"))
    write(tmp_path, "a.yml", GOOD.format(name="a"))
    write(tmp_path, "notes.txt", "not a flow")
    (tmp_path / "parts").mkdir()
    write(tmp_path / "parts", "fragment.yaml", "states: {}\n")
    assert [p.name for p in flow_files(tmp_path)] == ["a.yml", "b.yaml"]
    flows, warnings = load_checked(tmp_path)
    assert sorted(flows) == ["a", "b"] and warnings == []


def test_every_error_of_every_file_is_reported_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", GOOD.format(name="ok"))
    write(tmp_path, "bad1.yaml", "flow: bad1\nstart: mian\nstates:\n  main: {say: hi, hangup: true}\n")
    write(tmp_path, "bad2.yaml", "flow: bad2\nstart: main\nstates:\n  main:\n    menu: {prompt: hi, options: {\"1\": nowhere}}\n")
    with pytest.raises(FlowSetError) as err:
        load_checked(tmp_path)
    text = str(err.value)
    assert "bad1.yaml:2:8: error:" in text and "did you mean 'main'" in text
    assert "bad2.yaml:" in text
    assert text.splitlines()[-1].startswith("ivrkit worker: not starting,")
    assert err.value.exit_code == 1
    assert {i.file.rsplit("/", 1)[-1] for i in err.value.issues} == {"bad1.yaml", "bad2.yaml"}


def test_two_files_with_one_flow_name_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD.format(name="same"))
    write(tmp_path, "b.yaml", GOOD.format(name="same"))
    with pytest.raises(FlowSetError, match="flow name 'same' is also used by"):
        load_checked(tmp_path)


@pytest.mark.parametrize("setup", ["missing", "empty"])
def test_nothing_to_load_is_a_clear_error(tmp_path: Path, setup: str) -> None:
    path = tmp_path / "nope" if setup == "missing" else tmp_path
    with pytest.raises(FlowSetError, match="no such flow file or folder" if setup == "missing" else "no flow files"):
        flow_files(path)


def test_the_example_flows_compile_into_one_machine_each(tmp_path: Path) -> None:
    opts = WorkerOptions(path=REPO / "flows", default_flow="acme-bank")
    fs = build_flow_set(opts)
    assert "acme-bank" in fs.names and fs.router.default == "acme-bank"
    bank = fs.flows["acme-bank"]
    assert bank.machine.flow is bank.flow
    assert bank.audio.base_dir == (REPO / "flows").resolve()


def test_only_template_free_prompts_may_be_kept_in_memory(tmp_path: Path) -> None:
    flows, _ = load_checked(write(tmp_path, "f.yaml", GOOD.format(name="f")))
    fixed = fixed_prompt_parts(flows["f"])
    assert (PromptPart("text", "Goodbye."),) in fixed
    assert not any("caller_number" in part.value for parts in fixed for part in parts)


def test_a_flow_version_changes_with_its_content_or_an_include_never_with_its_place(tmp_path: Path) -> None:
    """The version a call's trace records: equal for equal files wherever they sit (two workers
    of one release agree), different when the flow or a file it includes changes."""
    one, two = tmp_path / "one", tmp_path / "two"
    for d in (one, two):
        (d / "parts").mkdir(parents=True)
        write(d / "parts", "common.yaml", "states:\n  bye: {say: Goodbye., hangup: true}\n")
        write(d, "f.yaml", "flow: f\nstart: main\ninclude: [parts/common.yaml]\nstates:\n  main: {say: Hello., next: bye}\n")
    versions = [build_flow_set(WorkerOptions(path=d, default_flow="f")).flows["f"].version for d in (one, two)]
    assert versions[0] == versions[1] and len(versions[0]) == 12
    write(two / "parts", "common.yaml", "states:\n  bye: {say: See you., hangup: true}\n")
    changed = build_flow_set(WorkerOptions(path=two, default_flow="f"))
    assert changed.flows["f"].version != versions[0]
    assert changed.versions == f"f@{changed.flows['f'].version}"
    assert flow_version([str(two / "f.yaml"), str(two / "parts" / "common.yaml")]) == changed.flows["f"].version
    assert flow_version([str(two / "gone.yaml")]) != flow_version([])  # a file removed since: still a version


def test_words_the_offline_recogniser_cannot_say_are_warned_about_at_startup(tmp_path: Path) -> None:
    write(tmp_path, "say.yaml", "start: main\nstates:\n  main:\n    input: [dtmf, speech]\n    menu:\n"
                                "      prompt: Say billing.\n      options: {\"1\": {to: bye, say: [billing, zqxwv]}}\n"
                                "  bye: {say: Bye., hangup: true}\n")
    write(tmp_path, "keys.yaml", GOOD.format(name="keys"))
    fs = build_flow_set(WorkerOptions(path=tmp_path, default_flow="keys"))
    [issue] = [i for i in fs.warnings if i.code == "unknown-word"]
    assert (Path(issue.file).name, issue.line, issue.severity) == ("say.yaml", 3, "warning")
    assert "no pronunciation for 'zqxwv' (option '1' of state 'main')" in issue.message
