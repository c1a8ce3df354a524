"""The e2e leak check's helpers (`trace_text`, `log_text`): they must find a leaked PIN and must
never find one by chance in a time, an id or a measurement."""

from __future__ import annotations

import json
from pathlib import Path

from tests.stack.testenv import MEASURED, log_text, pins_in, pins_in_output, trace_text

PIN = "4321"


def test_a_trace_keeps_a_leaked_pin_and_drops_times_ids_and_measurements() -> None:
    trace = [
        {"ts": "2025-01-01T00:00:04.321Z", "t": 14.321, "seq": 4321, "event": "call", "room": "r-4321"},
        {"event": "barge_in", "prompt": 3, "cut_ms": 14.32195, "played_ms": 843.21},
        {"event": "hook", "set": {"took": 0.4321, "note": "took 24.3210 s"}},
        {"event": "key", "digit": "*", "arrived": 4.321},
    ]
    text = trace_text(trace)
    assert PIN not in text
    assert json.loads(text)[1] == {"event": "barge_in", "prompt": 3, "cut_ms": MEASURED, "played_ms": MEASURED}
    for leak in ({"event": "prompt", "text": "Your PIN is 4321."}, {"event": "hook", "set": {"pin": 4321}},
                 {"event": "hook", "set": {"pin": 4321.0}}, {"event": "dtmf_published", "digit": "4"}):
        assert (PIN in trace_text([leak])) is (leak["event"] != "dtmf_published")


def test_a_log_keeps_a_leaked_pin_and_drops_times_ids_and_measurements() -> None:
    lines = [
        json.dumps({"timestamp": "2025-01-01 00:00:04,321", "job_id": "AJ_4321", "level": "DEBUG",
                    "message": "prompt 3 cut 14.321 ms after the key (843 ms played)", "elapsed": 4.321}),
        "plain line: hook took 0.4321 s",
    ]
    assert PIN not in log_text("\n".join(lines))
    assert PIN in log_text(json.dumps({"level": "ERROR", "message": "bad pin 4321"}))
    assert PIN in log_text("plain line: bad pin 4321.")  # the end of a sentence is no measurement
    sip = ('2026-12-05T01:44:46.199Z\tINFO\tsip\tsip/media.go:119\tcall statistics\t{"room": "dial-wait", '
           '"stats": {"room":{"input_packets":55,"input_bytes":4321,"resets":0}}}')
    assert PIN not in log_text(sip)  # a counter in another component's JSON (CI, Dec 2026)
    assert PIN in log_text(sip.replace('"resets":0', '"digits":"4321"'))  # a string there is still found


def test_the_pin_sweep_finds_whole_tokens_only(tmp_path: Path) -> None:
    assert pins_in("bad pin 4321.") == ["4321"]
    assert pins_in('{"message": "pin=4321"}') == ["4321"]
    for by_chance in ("room test-30246-4321", "job AJ_4321x", "number 143210", "worker pid=4321 started",
                      "port 4321", "took 14.321 ms", "HTTP server listening on :4321", "at 127.0.0.1:4321",
                      "localhost:4321"):
        assert pins_in(log_text(by_chance)) == [], by_chance


def test_the_pin_sweep_names_file_and_line_and_skips_times(tmp_path: Path) -> None:
    trace = tmp_path / "traces" / "room--AJ_1.jsonl"
    trace.parent.mkdir()
    trace.write_text("\n".join(json.dumps(r) for r in [
        {"ts": "2026-12-04T16:44:47.796+00:00", "t": 4.1111, "event": "key", "digit": "*", "arrived": 3333.4},
        {"event": "prompt", "text": "Your PIN is 4321"},
    ]) + "\n")
    (tmp_path / "worker.log").write_text(json.dumps({"timestamp": "2026-12-04 00:00:05,678", "message": "ok"}) + "\n"
                                         + "plain line with 9876 in it\n")
    (tmp_path / "notes.txt").write_text("4321\n")  # neither a log nor a trace
    assert pins_in_output([tmp_path]) == [f"{trace}:2: 4321", f"{tmp_path / 'worker.log'}:2: 9876"]
