"""What listening for in-band DTMF costs per call on the real stack, beside key-only calls.

    sudo .venv/bin/python bench/inband_cost.py          # ~4 min (bench/results/inband_cost.json)
    sudo .venv/bin/python bench/inband_cost.py --smoke

In the harness's namespace (tests/stack): Redis, livekit-server, LiveKit SIP and one ivrkit
worker (thread executor) serving two copies of one flow — a menu waiting 60 s for a key — one
key-only (no `dtmf:`, so the worker never subscribes to the caller's audio), one with
`dtmf: inband` (the caller's track subscribed, decoded to 8 kHz and fed to the detector for
the whole call). N SIPp phones call one copy at a time, each streaming PCMU audio as a phone
does (a quiet 300 Hz tone, so the audio is not silence), and sit in the menu; the worker's CPU
(its whole process tree) is read over a window in the middle of the calls, after the prompt
has played. Batches alternate (key-only first, then in-band, repeated) so both sides see the
same swings of load on this shared machine. Baseline, same run: the key-only batches.
Reported: CPU % of one core per call for each side, and the difference = the cost of listening.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _report import Report, parser, table
from _stack_run import REPO, cpu_seconds, missing, tree

sys.path.insert(0, str(REPO / "tests"))

AGENT = "ivrkit-inband-cost"
KEYS_NUMBER, INBAND_NUMBER = "+15550041", "+15550042"
FLOW = """\
flow: {name}
{dtmf}start: main
defaults: {{timeout: 60s, retries: 1}}
states:
  main:
    menu:
      prompt: {{audio: tones/menu.wav}}
      options: {{"1": bye}}
      on_max_retries: bye
  bye: {{say: {{audio: tones/menu.wav}}, hangup: true}}
"""


def _batch(sip: Any, number: str, calls: int, workdir: Path, worker_pid: int, *, hold: float, window: tuple[float, float],
           first_caller: int) -> float:
    """CPU seconds per second of the worker tree over `window` (seconds after the calls began)."""
    phones = [sip.phone(number, workdir / f"{number[1:]}-{first_caller + i}", caller=f"+1555{first_caller + i:07d}",
                        hold=hold, answer_timeout=15.0, tone_hz=300.0) for i in range(calls)]
    started = time.monotonic()
    time.sleep(max(0.0, started + window[0] - time.monotonic()))
    c0, t0 = cpu_seconds(tree(worker_pid)), time.monotonic()
    time.sleep(max(0.0, started + window[1] - time.monotonic()))
    used = (cpu_seconds(tree(worker_pid)) - c0) / (time.monotonic() - t0)
    results = [p.wait() for p in phones]
    sip.stop_calls()
    bad = [r for r in results if not r.answered]
    if bad:
        raise RuntimeError(f"{len(bad)} of {calls} calls to {number} were not answered: {bad[0].describe()}")
    return used


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--calls", type=int, default=8, help="phones per batch (default 8)")
    p.add_argument("--rounds", type=int, default=3, help="key-only + in-band batch pairs (default 3)")
    args = p.parse_args()
    calls, rounds = (2, 1) if args.smoke else (args.calls, args.rounds)
    # The smoke proves the script end to end (calls answered, figures computed), not the figures.
    hold, window = (7.0, (3.0, 6.0)) if args.smoke else (30.0, (8.0, 26.0))
    idle_s, settle_s = (2.0, 1.0) if args.smoke else (5.0, 3.0)
    reason = missing()
    from stack.sip import create_dispatch_rule, create_inbound_trunk, sip_stack_missing

    reason = reason or sip_stack_missing()
    report = Report("inband_cost", "In-band DTMF on the real stack: worker CPU per call, listening vs key-only")
    report.settings = {"calls_per_batch": calls, "rounds": rounds, "hold_s": hold, "window_s": list(window),
                       "executor": "thread", "phone_audio": "PCMU, 300 Hz tone"}
    report.print_header()
    if reason:
        print(f"skipped: {reason}")
        return 0 if args.smoke else 1
    from stack.sip_stack import SipStack
    from stack.testenv import tone_flows

    with tempfile.TemporaryDirectory(prefix="ivrkit-inband-cost-") as tmp:
        work = Path(tmp)
        (work / "src").mkdir()
        (work / "src" / "keys.yaml").write_text(FLOW.format(name="keys-only", dtmf=""))
        (work / "src" / "inband.yaml").write_text(FLOW.format(name="inband", dtmf="dtmf: inband\n"))
        flows = tone_flows((work / "src").glob("*.yaml"), work / "flows", {"menu": (550, 1.0)}, 48000)
        sip = SipStack.up(work / "logs", sip_level="info")
        try:
            trunk = sip.api(lambda lk: create_inbound_trunk(lk, [KEYS_NUMBER, INBAND_NUMBER],
                                                            allowed_addresses=[f"{sip.ns.address}/32"]))
            sip.api(lambda lk: create_dispatch_rule(lk, [trunk], agent_name=AGENT))
            worker = sip.start_worker(flows, agent=AGENT, trace_dir=work / "traces", expect_flows="inband,keys-only", args=[
                "--route", f"number:{KEYS_NUMBER}=keys-only", "--route", f"number:{INBAND_NUMBER}=inband"])
            idle0, t0 = cpu_seconds(tree(worker.pid)), time.monotonic()
            time.sleep(idle_s)
            idle = (cpu_seconds(tree(worker.pid)) - idle0) / (time.monotonic() - t0)
            per_call: dict[str, list[float]] = {"key-only": [], "inband": []}
            n = 0
            for _ in range(rounds):
                for side, number in (("key-only", KEYS_NUMBER), ("inband", INBAND_NUMBER)):
                    used = _batch(sip, number, calls, work / "phones", worker.pid, hold=hold, window=window, first_caller=n)
                    n += calls
                    per_call[side].append(100 * (used - idle) / calls)
                    print(f"{side}: {100 * used:.1f} % of a core for {calls} calls (idle worker {100 * idle:.1f} %)", flush=True)
                    time.sleep(settle_s)  # the jobs end, the worker settles
            worker.stop(timeout=10)
        finally:
            sip.down()
    keys_pc, inband_pc = statistics.median(per_call["key-only"]), statistics.median(per_call["inband"])
    report.results.append({"calls_per_batch": calls, "idle_worker_cpu_pct": 100 * idle,
                           "key_only_cpu_pct_per_call": keys_pc, "inband_cpu_pct_per_call": inband_pc,
                           "listening_cost_pct_per_call": inband_pc - keys_pc,
                           "key_only_batches": per_call["key-only"], "inband_batches": per_call["inband"]})
    report.show(table(["calls", "flow", "worker CPU % of a core per call (median of batches)", "batches", "idle worker %"],
                      [[calls, "key-only (no dtmf:), audio never subscribed", keys_pc,
                        ", ".join(f"{x:.2f}" for x in per_call["key-only"]), 100 * idle],
                       [calls, "dtmf: inband (subscribed, decoded, detector)", inband_pc,
                        ", ".join(f"{x:.2f}" for x in per_call["inband"]), 100 * idle]]))
    report.notes.append(f"listening costs {inband_pc - keys_pc:.2f} % of a core per call "
                        f"({inband_pc / keys_pc:.1f}x a key-only call waiting in a menu)" if keys_pc > 0 else
                        f"listening costs {inband_pc - keys_pc:.2f} % of a core per call")
    report.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
