"""The figures over real worker trace files of flows/bank.yaml (see calls.py for each call)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ivrkit.flow.loader import load_flow
from ivrkit.report.aggregate import UNFINISHED, aggregate, trace_files
from tests.report.calls import BANK, agent, write_call, write_calls


async def test_every_figure_of_seven_bank_calls(tmp_path: Path) -> None:
    await write_calls(tmp_path)
    flow = load_flow(BANK)
    report = aggregate([tmp_path], {flow.name: flow})
    assert list(report.flows) == ["acme-bank"] and report.skipped_count == 0
    f = report.flows["acme-bank"]
    assert f.calls == 7
    assert f.ended_by == Counter({"transfer": 3, "caller_hangup": 3, "hangup": 1})
    assert (f.to_person, f.contained) == (3, 4)
    assert f.funnel() == ["main", "agent", "account", "pin", "goodbye"]
    assert f.reached == Counter({"main": 7, "agent": 3, "account": 2, "pin": 2, "goodbye": 1})
    assert f.hung_up_in == Counter({"pin": 2, "main": 1})  # the silent caller gave up in main
    assert f.asks == {"main": "menu", "account": "collect", "pin": "collect"}
    assert f.no_input == Counter({"main": 5})  # 2 from the silent caller, 3 from the one who never answered
    assert f.no_match == Counter({"main": 1, "pin": 1})  # the 9 in main, the wrong PIN
    assert f.invalid_keys == Counter({("main", "9"): 1})  # a collect's digits are never "invalid keys"
    assert f.median_time("transfer", "agent") == 4.2  # 4.2, 4.2 and 9.2 s
    assert round(f.median_time("hangup", "goodbye"), 1) == 51.4
    assert f.edges["main:key:0"] == 3 and f.edges["main:max_retries"] == 1 and f.edges["pin:invalid"] == 1
    assert f.moves[("main", "agent", "key 0")] == 3


async def test_masked_digits_stay_masked(tmp_path: Path) -> None:
    await write_calls(tmp_path)
    rows = [json.loads(line) for p in tmp_path.iterdir() for line in p.read_text().splitlines()]
    pin_keys = [r["digit"] for r in rows if r["event"] == "key" and r["state"] == "pin"]
    assert len(pin_keys) == 6 and set(pin_keys) <= {"*", "?"}  # the traces hold no PIN digit to leak
    f = aggregate([tmp_path]).flows["acme-bank"]
    assert [s for s, _ in f.invalid_keys] == ["main"]  # nor does the report name one


async def test_a_call_cut_off_without_call_end_is_unfinished_and_junk_is_skipped(tmp_path: Path) -> None:
    path = await write_call(tmp_path, 1, agent)
    lines = [line for line in path.read_text().splitlines() if json.loads(line)["event"] not in ("call_end", "job_end")]
    path.write_text("\n".join(lines) + "\n")
    (tmp_path / "notes.jsonl").write_text("not json\n")
    (tmp_path / "README.txt").write_text("ignored: not .jsonl\n")
    report = aggregate([tmp_path])
    assert report.flows["acme-bank"].ended_by == Counter({UNFINISHED: 1})
    assert report.skipped_count == 1 and "notes.jsonl:1: not JSON" in report.skipped[0]
    assert report.flows["acme-bank"].edges == Counter()  # no flow given: moves only
    assert report.flows["acme-bank"].moves[("main", "agent", "key 0")] == 1


def test_folders_are_walked_in_name_order_and_files_taken_as_given(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    for p in ("b/2.jsonl", "a/1.jsonl", "a/x.txt", "0.jsonl"):
        (tmp_path / p).write_text("")
    given = tmp_path / "a" / "x.txt"
    assert [p.relative_to(tmp_path).as_posix() for p in trace_files([tmp_path, given])] == \
        ["0.jsonl", "a/1.jsonl", "b/2.jsonl", "a/x.txt"]
