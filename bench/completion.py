"""Row 4: how long after the caller's last key the input counts as complete.

    .venv/bin/python bench/completion.py          # full run (bench/results/completion.json)
    .venv/bin/python bench/completion.py --smoke

All three run on the same `VirtualClock`, keys pressed 0.3 s apart after the prompt has ended:
- ivrkit: the real `Call` on `FakeChannel` (flows below); "complete" = the next state's prompt
  starts playing (the caller hears the result), read from the fake phone's play log;
- LiveKit `GetDtmfTask` and Pipecat `DTMFAggregator`: MODELS of their completion rules from
  their documented parameters and source, defaults as shipped (bench/_dtmf_models.py says
  exactly what is modelled); "complete" = the digits are handed on.
Virtual time makes the figures exact and repeatable (no noise): they are properties of the
completion rules, not of this machine. The variable-length row shows where ivrkit waits too.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from _calls import until_idle
from _dtmf_models import DTMFAggregatorModel, GetDtmfTaskModel
from _report import Report, ms, parser, table

GAP = 0.3  # seconds between the caller's keys

FLOWS = {
    "pin": """\
flow: pin
start: pin
states:
  pin:
    collect: {prompt: "Enter your four digit PIN.", into: pin, min_digits: 4, max_digits: 4, sensitive: true}
    next: done
  done: {say: "Thank you.", hangup: true}
""",
    "menu": """\
flow: menu
start: main
states:
  main:
    menu:
      prompt: "For balances press 1. For cards press 2."
      options: {"1": done, "2": done}
  done: {say: "Thank you.", hangup: true}
""",
    "account": """\
flow: account
start: acct
defaults: {inter_digit_timeout: 3s}
states:
  acct:
    collect: {prompt: "Enter your account number, then press pound.", into: acct, min_digits: 4, max_digits: 10}
    next: done
  done: {say: "Thank you.", hangup: true}
""",
}

SCENARIOS = [
    # label, flow, keys, GetDtmfTask num_digits
    ("4-digit PIN, no #", "pin", "1234", 4),
    ("4-digit PIN, then #", "pin", "1234#", 4),
    ("menu key", "menu", "1", 1),
    ("account no. 4-10 digits (6 typed), then #", "account", "123456#", 6),
    ("account no. 4-10 digits (6 typed), no #", "account", "123456", 6),
]


async def _settle(clock: Any, qsize: Any, until: float) -> None:
    """Move virtual time to `until`, letting the call handle each timer before the next."""
    while True:
        due = clock.next_due()
        if due is None or due > until:
            break
        clock.fire_next(until)
        await until_idle(qsize)
    clock.advance(until - clock.now())
    await until_idle(qsize)


async def ivrkit_completion(flow_text: str, keys: str) -> dict[str, Any]:
    from ivrkit.call import Call
    from ivrkit.flow.loader import load_flow
    from ivrkit.machine import FlowMachine
    from ivrkit.testing import FakeChannel, VirtualClock

    with tempfile.TemporaryDirectory(prefix="ivrkit-bench-") as tmp:
        path = Path(tmp) / "flow.yaml"
        path.write_text(flow_text)
        machine = FlowMachine(load_flow(path))
    clock = VirtualClock()
    channel = FakeChannel(clock)
    call = Call(machine, channel)
    qsize = lambda: call.idle_info[1]  # noqa: E731
    task = asyncio.get_running_loop().create_task(call.run())
    await until_idle(qsize)
    first = channel.played[0]
    await _settle(clock, qsize, first.started + first.duration + 0.5)  # prompt over, caller listens
    last_key = 0.0
    for i, key in enumerate(keys):
        if i:
            await _settle(clock, qsize, clock.now() + GAP)
        last_key = clock.now()
        channel.press(key)
        await until_idle(qsize)
    await _settle(clock, qsize, last_key + 10.0)
    done = next((p for p in channel.played if p.state == "done"), None)
    channel.caller_hangup()
    await until_idle(qsize)
    await asyncio.wait_for(task, 5)
    if done is None:
        raise RuntimeError(f"ivrkit never reached 'done' for keys {keys!r}: played {channel.played}")
    return _latency(done.started, keys, last_key)


def model_completion(model_cls: Any, keys: str, **kw: Any) -> dict[str, Any]:
    from ivrkit.testing import VirtualClock

    clock = VirtualClock()
    model = model_cls(clock, **kw)
    last_key = 0.0
    for i, key in enumerate(keys):
        if i:
            clock.advance(GAP)
        last_key = clock.now()
        model.press(key)
    clock.advance(10.0)
    if model.done is None:
        raise RuntimeError(f"{model_cls.__name__} never completed for {keys!r}")
    return {**_latency(model.done.at, keys, last_key), "ok": model.done.ok, "value": model.done.value}


def _latency(done_at: float, keys: str, last_key: float) -> dict[str, Any]:
    """Latency after the last key; 0 when input was already complete before it (then `at_key`
    says which key completed it, 1-based)."""
    first_key = last_key - GAP * (len(keys) - 1)
    at_key = min(len(keys), int(round((done_at - first_key) / GAP)) + 1) if done_at < last_key else len(keys)
    return {"latency_s": max(0.0, done_at - last_key), "at_key": at_key}


def main() -> int:
    p = parser(__doc__ or "")
    args = p.parse_args()
    scenarios = SCENARIOS[:2] if args.smoke else SCENARIOS
    report = Report("completion", "Row 4: completion latency after the last key (virtual clock; LiveKit/Pipecat are models)")
    report.settings = {"key_gap_s": GAP, "livekit_model": "GetDtmfTask(num_digits, dtmf_input_timeout=4.0, dtmf_stop_event='#')",
                       "pipecat_model": "DTMFAggregator(timeout=2.0, termination_digit='#')"}
    report.print_header()
    rows = []
    for label, flow, keys, num_digits in scenarios:
        ivr = asyncio.run(ivrkit_completion(FLOWS[flow], keys))
        lk = model_completion(GetDtmfTaskModel, keys, num_digits=num_digits)
        pc = model_completion(DTMFAggregatorModel, keys)
        res = {"scenario": label, "keys": keys, "ivrkit_ms": ms(ivr["latency_s"]), "ivrkit_done_at_key": ivr["at_key"],
               "livekit_getdtmftask_model_ms": ms(lk["latency_s"]), "livekit_ok": lk["ok"],
               "pipecat_dtmfaggregator_model_ms": ms(pc["latency_s"]), "pipecat_value": pc["value"]}
        report.results.append(res)
        early = f" (done at key {ivr['at_key']})" if ivr["at_key"] < len(keys) else ""
        rows.append([label, keys, f"{res['ivrkit_ms']:,.0f}{early}", res["livekit_getdtmftask_model_ms"],
                     res["pipecat_dtmfaggregator_model_ms"]])
    report.show(table(["input", "keys", "ivrkit ms", "LiveKit GetDtmfTask (model) ms", "Pipecat DTMFAggregator (model) ms"], rows))
    report.notes.append("LiveKit/Pipecat columns are models of their completion rules (bench/_dtmf_models.py), "
                        "not runs of those frameworks; Pipecat hands on '1234#' with the '#' included")
    report.notes.append("ivrkit with max_digits=4 completes at the 4th digit; a '#' typed after it is "
                        "type-ahead for the NEXT state (a no-match if that is a menu)")
    report.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
