"""The worker's CPU per call while a prompt plays and while a call waits in a menu: ivrkit now
against ivrkit before issue 16's changes, and against a queue-less prompt source, side by side
in one run, with where each call's CPU goes (the worker's threads by name).

"Before": prompt audio pushed in 20 ms frames, each `capture_frame` waiting for room in the
native queue, every room hearing every native event of the process. "Now": `CHUNK_MS` chunks,
pushed only when the queue has room (`PromptPlayer._pace`), each room and audio stream hearing
its own events (`ivrkit.livekit.ffi_events`). "Queue-less": as now, but the call's native
source has no queue and prompts are fed 10 ms at a time from Python (`_queueless.py`), so
nothing is sent between prompts — the native source with a queue sends silence then. The
worker of a batch is started with the module settings of its side (LAUNCH).

    sudo .venv/bin/python bench/prompt_cpu.py            # ~4 min (bench/results/prompt_cpu.json)
    sudo .venv/bin/python bench/prompt_cpu.py --smoke    # 2 calls, playing, "now" only

In the harness's namespace (tests/stack): livekit-server, one ivrkit worker (thread executor)
per batch, and N Go callers (tests/e2e/goclient: they join, publish a microphone track and never
subscribe, so their own CPU is not the worker's and stays small). Three flows: `play`, whose menu
prompt is a 60 s tone (the call hears a prompt for the whole window); `idle`, a 0.5 s prompt
then 60 s of waiting for a key; `keys`, the same menu with key 1 leading back to it, each
caller pressing 1 every second (a move, a cut prompt, the prompt again: the key cycle; every
key sent must show in its call's trace). Set-up is read in the `idle` batches: the worker's
CPU from the callers' start until every call heard its first prompt, less the idle worker. Once every call of the batch is in its phase (its trace shows
the prompt started, or ended), the worker's CPU — its own process, read from /proc, so the
callers' and the server's CPU are not in it — is read over a window. Per batch the same worker,
idle before the calls, gives the baseline subtracted. Batches alternate: before, now,
queue-less, for each phase, repeated, so all see the same swings of this shared machine. The
same window is split by the worker's threads (/proc/PID/task/*/comm): Python (the interpreter's
threads: event loops, livekit's FFI callbacks), WebRTC's audio send (`AudioEncoderQue`, the Opus
encoder and RTP; `AudioSourceCapt`, the native source's 10 ms timer), livekit's audio capture
runtime (`livekit-audio`) and the rest of the native client (network, tokio, signalling).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _report import Report, parser, table
from _stack_run import REPO, WORKER_ENV, cpu_seconds, missing, stack_up, tree

sys.path.insert(0, str(REPO / "tests"))

from ivrkit.livekit.player import CHUNK_MS  # noqa: E402

AGENT = "ivrkit-prompt-cpu"
PLAY = """\
flow: play
start: main
defaults: {timeout: 60s, retries: 1}
states:
  main:
    menu:
      prompt: {audio: tones/long.wav}
      options: {"1": bye}
      on_max_retries: bye
  bye: {say: {audio: tones/short.wav}, hangup: true}
"""
IDLE = PLAY.replace("flow: play", "flow: idle").replace("tones/long.wav", "tones/short.wav")
#: A key every second: each moves back to the menu, cuts its prompt and starts it again.
KEYS = IDLE.replace("flow: idle", "flow: keys").replace('options: {"1": bye}', 'options: {"1": main}')
#: Seconds between one caller's keys in the "keys" phase.
KEY_EVERY = 1.0
#: What each phase's calls do during the window, and the trace event that says they are in it.
PHASES = {"play": ("a prompt playing", "prompt"), "idle": ("waiting in a menu", "prompt_end"),
          "keys": (f"a key every {KEY_EVERY:g} s", "prompt_end")}
#: Starts the worker with the settings of its side: "before" or "now".
LAUNCH = ("import sys, ivrkit.livekit.player as p, ivrkit.livekit.ffi_events as f\n"
          "side = sys.argv.pop(1)\n"
          "if side == 'before': p.CHUNK_MS, p.PACED, f.ENABLED = 20, False, False\n"
          f"if side == 'queueless': sys.path.insert(0, {str(Path(__file__).parent)!r}); import _queueless; _queueless.install()\n"
          "from ivrkit.livekit.worker import main; sys.exit(main())")
SIDES = ("before", "now", "queueless")
#: Thread groups of the worker process, by the start of a thread's name (the rest: "native other").
GROUPS = (("Python", ("python",)), ("WebRTC audio send", ("AudioEncoderQue", "AudioSourceCapt")),
          ("livekit audio capture", ("livekit-audio",)))
#: Cores a batch's worker used at or above which it was starved (see the table's note).
SATURATED = 1.1


def _threads(pid: int) -> dict[str, float]:
    """CPU seconds so far of the process's threads, summed by `GROUPS`."""
    tick = os.sysconf("SC_CLK_TCK")
    out = dict.fromkeys([g for g, _ in GROUPS] + ["native other"], 0.0)
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        group = next((g for g, starts in GROUPS if name.startswith(starts)), "native other")
        out[group] += (int(fields[11]) + int(fields[12])) / tick
    return out


def _in_phase(trace_dir: Path, rooms: list[str], event: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        missing_rooms = [r for r in rooms if not any(f'"event": "{event}"' in p.read_text()
                                                     for p in trace_dir.glob(f"{r}--*.jsonl"))]
        if not missing_rooms:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(missing_rooms)} calls never reached {event!r}, e.g. {missing_rooms[0]}")
        time.sleep(0.2)


def _batch(st: Any, flows: Path, work: Path, side: str, phase: str, calls: int, window: float, n: int) -> dict[str, Any]:
    trace_dir = work / f"traces-{n}"
    proc = st.start([sys.executable, "-c", LAUNCH, side, "start", str(flows), "--agent-name", AGENT,
                     "--executor", "thread", "--no-guard", "--max-calls", "1000", "--log-level", "WARN", "--http-port", "0",
                     "--trace-dir", str(trace_dir), *(x for ph in PHASES for x in ("--route", f"room:cpu-{ph}-*={ph}"))],
                    name=f"prompt-cpu-worker-{n}", env={**st.env(), **WORKER_ENV}, cwd=REPO)
    proc.wait_for_log(r"ivrkit worker registered", timeout=90)
    pid = proc.pid
    time.sleep(2.0)
    c0, g0, t0 = cpu_seconds(tree(pid)), _threads(pid), time.monotonic()
    time.sleep(window / 2)
    span = time.monotonic() - t0
    idle = (cpu_seconds(tree(pid)) - c0) / span
    idle_groups = {g: (v - g0[g]) / span for g, v in _threads(pid).items()}
    stamp = time.monotonic_ns() % 10**9
    rooms = [f"cpu-{phase}-{stamp}-{i}" for i in range(calls)]
    c_setup, t_setup = cpu_seconds(tree(pid)), time.monotonic()
    callers = [st.go_caller(room, room, agent_name=AGENT, timeout=30) for room in rooms]
    try:
        # Go callers never subscribe: each prompt starts after the worker's 5 s subscription wait.
        _in_phase(trace_dir, rooms, PHASES[phase][1], 40)
        setup = (cpu_seconds(tree(pid)) - c_setup - idle * (time.monotonic() - t_setup)) / calls
        time.sleep(1.0)
        c0, g0, t0 = cpu_seconds(tree(pid)), _threads(pid), time.monotonic()
        keys = _press_every(callers, KEY_EVERY, window) if phase == "keys" else 0
        time.sleep(max(0.0, t0 + window - time.monotonic()))
        span = time.monotonic() - t0
        used = (cpu_seconds(tree(pid)) - c0) / span
        groups = {g: ((v - g0[g]) / span - idle_groups[g]) / calls for g, v in _threads(pid).items()}
        if phase == "play":  # the window must have been inside the 60 s prompt for every call
            ended = [r for r in rooms for p in trace_dir.glob(f"{r}--*.jsonl") if '"event": "prompt_end"' in p.read_text()]
            if ended:
                raise RuntimeError(f"the prompt ended in {len(ended)} calls during the window")
        if phase == "keys":  # every key pressed reached its call (the last ones may still be on their way)
            _keys_heard(trace_dir, rooms, keys)
    finally:
        for c in callers:
            c.leave(timeout=5)
        proc.stop(timeout=15)
    return {"idle_worker": idle, "used": used, "per_call": (used - idle) / calls, "groups": groups, "setup_cpu_s": setup}


def _press_every(callers: list[Any], every: float, window: float) -> int:
    """Each caller presses 1 every `every` seconds for `window` seconds, the callers spread over
    the interval; returns the number of keys sent."""
    start, sent = time.monotonic(), 0
    plan = sorted((start + k * every + i * every / len(callers), i) for i in range(len(callers))
                  for k in range(int(window / every)))
    for at, i in plan:
        time.sleep(max(0.0, at - time.monotonic()))
        callers[i].send("dtmf", digit="1", code=1)
        sent += 1
    return sent


def _keys_heard(trace_dir: Path, rooms: list[str], sent: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        heard = sum(p.read_text().count('"event": "key"') for r in rooms for p in trace_dir.glob(f"{r}--*.jsonl"))
        if heard >= sent:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{sent} keys pressed, {heard} in the calls' traces")
        time.sleep(0.2)


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--calls", default="10,25", help="calls per batch, a comma list (default 10,25)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of the batches (default 2)")
    p.add_argument("--window", type=float, default=10.0, help="seconds each batch is measured (default 10)")
    args = p.parse_args()
    sizes = [2] if args.smoke else [int(x) for x in args.calls.split(",")]
    rounds, window = (1, 3.0) if args.smoke else (args.rounds, args.window)
    # Which sides run each phase: the key cycle is measured on ivrkit as it is.
    plan = {"play": ("now",)} if args.smoke else {"play": SIDES, "idle": SIDES, "keys": ("now",)}
    report = Report("prompt_cpu", "Worker CPU per call by phase: ivrkit now vs before issue 16's changes and a queue-less source")
    report.settings = {"calls": sizes, "rounds": rounds, "window_s": window, "executor": "thread",
                       "chunk_ms": CHUNK_MS, "callers": "Go (never subscribe)", "key_every_s": KEY_EVERY}
    report.print_header()
    reason = missing()
    if reason:
        print(f"skipped: {reason}")
        return 0 if args.smoke else 1
    from stack.testenv import tone_flows

    got: dict[tuple[str, int, str], list[float]] = {}
    used: dict[tuple[str, int, str], list[float]] = {}
    split: dict[tuple[str, int, str], list[dict[str, float]]] = {}
    setups: dict[str, list[float]] = {}
    idles: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ivrkit-prompt-cpu-") as tmp, stack_up("prompt-cpu") as st:
        work = Path(tmp)
        (work / "src").mkdir()
        for name, text in (("play", PLAY), ("idle", IDLE), ("keys", KEYS)):
            (work / "src" / f"{name}.yaml").write_text(text)
        flows = tone_flows((work / "src").glob("*.yaml"), work / "flows", {"long": (440.0, 60.0), "short": (660.0, 0.5)})
        n = 0
        for _ in range(rounds):
            for calls in sizes:
                for phase, sides in plan.items():
                    for side in sides:
                        r = _batch(st, flows, work, side, phase, calls, window, n)
                        n += 1
                        got.setdefault((phase, calls, side), []).append(100 * r["per_call"])
                        used.setdefault((phase, calls, side), []).append(r["used"])
                        split.setdefault((phase, calls, side), []).append(r["groups"])
                        if phase == "idle":  # join, publish, first prompt (see the note)
                            setups.setdefault(side, []).append(1000 * r["setup_cpu_s"])
                        idles.append(100 * r["idle_worker"])
                        print(f"{phase} {calls} calls {side}: worker {100 * r['used']:.1f} % of a core "
                              f"(idle worker {100 * r['idle_worker']:.1f} %)", flush=True)
    rows, where = [], []
    for phase, sides in plan.items():
        what = PHASES[phase][0]
        for calls in sizes:
            fig = {side: statistics.median(got[(phase, calls, side)]) for side in sides}
            # One worker process tops out near 1.2-1.3 cores (one interpreter): a side that used
            # that much was starved, and its figure per call is a floor, not its cost.
            starved = {side: max(used[(phase, calls, side)]) >= SATURATED for side in sides}
            groups = {side: {g: 100 * statistics.median(b[g] for b in split[(phase, calls, side)]) for g in split[(phase, calls, side)][0]}
                      for side in sides}
            result: dict[str, Any] = {"phase": phase, "calls": calls, "saturated": starved, "threads_pct_per_call": groups}
            for side in sides:
                result[f"{side}_pct_per_call"] = fig[side]
                result[f"{side}_batches"] = got[(phase, calls, side)]
            report.results.append(result)
            for side in sides:
                where.append([what, calls, side, *(f"{v:.2f}" for v in groups[side].values())])
            shown = {side: f"{fig[side]:.2f}" + (" (saturated)" if starved[side] else "") if side in fig else "-"
                     for side in SIDES}
            ratio = f"{fig['before'] / fig['now']:.1f}x" if "before" in fig and fig["now"] > 0 else "-"
            rows.append([what, calls, shown["before"], shown["now"], shown["queueless"], ratio])
    report.show(table(["phase", "calls", "before: % of a core per call", "now: % of a core per call",
                       "queue-less: % of a core per call", "before / now"], rows))
    report.show(table(["phase", "calls", "side", *(f"{g} % per call" for g in [g for g, _ in GROUPS] + ["native other"])],
                      where))
    if setups:
        report.results.append({"phase": "setup", **{f"{side}_cpu_ms_per_call": statistics.median(v) for side, v in setups.items()}})
        report.notes.append("set-up, CPU per call from the caller's start to the end of its first prompt (join, publish, "
                            "the worker's 5 s wait for a subscription Go callers never make, a 0.5 s prompt), median of "
                            "the waiting-in-a-menu batches: "
                            + ", ".join(f"{side} {statistics.median(v):.0f} ms" for side, v in setups.items()))
    report.notes.append(f"idle worker (no call) {statistics.median(idles):.1f} % of a core, subtracted per batch")
    report.notes.append(f"(saturated): a batch of that side used >= {SATURATED:g} cores, near one process's ceiling: "
                        "its calls were starved and its figure per call is a floor")
    report.finish(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
