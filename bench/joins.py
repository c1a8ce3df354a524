"""Room joins from several threads of one process at the same moment: straight vs in turns.

    sudo .venv/bin/python bench/joins.py            # ~2 min (bench/results/joins.json)
    sudo .venv/bin/python bench/joins.py --smoke    # in turns only, 3 threads, one round

What livekit-agents' thread executor does when calls arrive together: each job's thread, with
its own event loop, joins its room. In the harness's namespace (tests/stack) against the e2e
livekit-server, `tests/stack/joiners.py` runs N threads joining N rooms at once, either with
`rtc.Room.connect` straight (the baseline) or through `ivrkit.livekit.joining.join` (ivrkit's
joins take turns, one process-wide lock). Rounds alternate between the two. A round counts
as panicked when livekit's native client reports "FFI Panic" (the Python SDK then SIGTERMs the
process, as it does the worker); reported: panicked rounds and, for rounds that finished, the
join times (from the barrier to a connected room, turn included).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from _report import Report, Summary, parser, table
from _stack_run import REPO, missing, stack_up

JOINERS = REPO / "tests" / "stack" / "joiners.py"


def _round(st: Any, threads: int, at_once: bool, n: int) -> tuple[bool, list[float]]:
    stamp = time.monotonic_ns() % 10**9
    tokens = [st.token(f"agent-{i}", f"bench-joins-{stamp}-{i}") for i in range(threads)]
    proc = st.start([sys.executable, str(JOINERS), "--url", st.url, "--stay", "0.5", *(["--at-once"] if at_once else [])],
                    name=f"joiners-{n}", env={**st.env(), "LIVEKIT_TOKENS": json.dumps(tokens), "PYTHONPATH": str(REPO)},
                    cwd=REPO)
    deadline = time.monotonic() + 60
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = proc.log_text()
    if proc.alive():
        proc.stop()
    lines = [line for line in log.splitlines() if line.startswith('{"joined"')]
    times = [float(s) for s in json.loads(lines[-1])["joined"].values()] if lines else []
    return "FFI Panic" in log, times


def main() -> int:
    p = parser(__doc__ or "")
    p.add_argument("--threads", type=int, default=6, help="threads joining at once (default 6)")
    p.add_argument("--rounds", type=int, default=4, help="rounds of each kind (default 4)")
    args = p.parse_args()
    threads, rounds = (3, 1) if args.smoke else (args.threads, args.rounds)
    report = Report("joins", "Room joins from threads of one process at once: straight vs in turns")
    report.settings = {"threads": threads, "rounds": rounds, "livekit_rtc": _rtc_version()}
    report.print_header()
    reason = missing()
    if reason:
        print(f"skipped: {reason}")
        return 0 if args.smoke else 1
    sides = {"straight (rtc.Room.connect)": True, "in turns (ivrkit.livekit.joining)": False}
    if args.smoke:  # a straight round that panics waits out the native client's 15 s
        del sides["straight (rtc.Room.connect)"]
    got: dict[str, dict[str, Any]] = {name: {"panicked": 0, "times": [], "joined": 0} for name in sides}
    with stack_up("joins") as st:
        n = 0
        for _ in range(rounds):
            for name, at_once in sides.items():
                panicked, times = _round(st, threads, at_once, n)
                n += 1
                got[name]["panicked"] += panicked
                got[name]["times"] += times
                got[name]["joined"] += len(times)
                print(f"{name}: {'PANIC' if panicked else 'ok'}, joined {len(times)}/{threads}", flush=True)
    rows = []
    for name, g in got.items():
        s = Summary.of([1000 * t for t in g["times"]]) if g["times"] else None
        report.results.append({"side": name, "rounds": rounds, "threads": threads, "panicked_rounds": g["panicked"],
                               "joined": g["joined"], "of": rounds * threads,
                               "join_ms_median": s.median if s else None, "join_ms_max": s.maximum if s else None})
        rows.append([name, f"{g['panicked']} of {rounds}", f"{g['joined']} of {rounds * threads}",
                     s.median if s else "-", s.maximum if s else "-"])
    report.show(table(["joins", "rounds with an FFI panic", "rooms joined", "join ms median", "join ms max"], rows))
    report.finish(args)
    return 0


def _rtc_version() -> str:
    from importlib.metadata import version

    return version("livekit")


if __name__ == "__main__":
    sys.exit(main())
