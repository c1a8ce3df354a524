"""Render bench/results/*.json into bench/README.md (between the results markers).

    .venv/bin/python bench/table.py           # print the summary and detail tables
    .venv/bin/python bench/table.py --write   # also replace the results section of README.md

The summary has one line per issue-6 row: ivrkit's figure, the same-run baseline, the ratio,
the target and whether this run met it, and the command that produced it. Every figure is
copied from a results file written by a bench script, never typed in by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _report import RESULTS, table

README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
ORDER = ["keypress", "keypress_metrics", "load", "memory", "completion", "server_latency", "concurrency", "report",
         "amd", "inband", "inband_cost", "speech", "joins", "prompt_cpu"]


def _load() -> dict[str, dict[str, Any]]:
    out = {}
    for name in ORDER:
        path = RESULTS / f"{name}.json"
        if path.exists():
            out[name] = json.loads(path.read_text())
    return out


def _cmd(d: dict[str, Any], root: bool = False) -> str:
    """The command as run, with the venv interpreter spelled out (older results say `python`)."""
    cmd = d["command"]
    if " " in cmd and cmd.split(" ", 1)[0].endswith("/.venv/bin/python"):  # run from a worktree
        cmd = ".venv/bin/python " + cmd.split(" ", 1)[1]
    if cmd.startswith("python "):
        cmd = ".venv/bin/python " + cmd[len("python "):]
    return f"`{'sudo ' if root else ''}{cmd}`"


def _met(flag: Any) -> str:
    return "-" if flag is None else ("yes" if flag else "**no**")


def summary(data: dict[str, dict[str, Any]]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    if "keypress" in data:
        d = data["keypress"]
        r = d["results"][0]
        cg = next((x for x in d["results"] if "ivrkit_ir_per_key" in x), None)
        extra = f"; {cg['ivrkit_ir_per_key']:,.0f} vs {cg['baseline_ir_per_key']:,.0f} instructions/key ({cg['ratio']:.1f}x)" if cg else ""
        rows.append(["1 engine per keypress", f"median {r['ivrkit_median_us']:.1f} µs, p99 {r['ivrkit_p99_us']:.0f} µs",
                     f"dict handler: median {r['baseline_median_us']:.1f} µs, p99 {r['baseline_p99_us']:.0f} µs",
                     f"{r['ratio_median']:.1f}x median{extra}", "< 50 µs median, < 1 ms p99", _met(r.get("target_met")),
                     _cmd(d)])
    if "load" in data:
        d = data["load"]
        by = {r["states"]: r for r in d["results"]}
        r = by.get(1000)
        big = by.get(5000)
        if r:
            more = f"; 5,000 states {big['load_check_ms_median']:.0f} ms" if big else ""
            rows.append(["2 load + check, 1,000 states", f"{r['load_check_ms_median']:.0f} ms{more}",
                         f"safe_load (libyaml) {r['csafe_load_ms_median']:.0f} ms",
                         f"{r['ratio_vs_csafe_load']:.1f}x; growth {r['growth']}", "< 1 s", _met(r.get("target_met")),
                         _cmd(d)])
    if "memory" in data:
        d = data["memory"]
        r = d["results"][-1]
        rows.append([f"3 memory per live call, {r['calls']:,} calls",
                     f"{r['ivrkit_tracemalloc_kb']:.1f} KB traced, {r['ivrkit_rss_kb']:.1f} KB RSS "
                     f"(engine share {r['engine_share_tracemalloc_kb']:.1f} KB)",
                     f"dict+task {r['dict_task_tracemalloc_kb']:.1f} KB; bare dict {r['bare_dict_tracemalloc_kb']:.2f} KB",
                     f"{r['ratio_vs_dict_task']:.1f}x dict+task", "< 50 KB", _met(r.get("target_met")), _cmd(d)])
    if "completion" in data:
        d = data["completion"]
        parts = [f"{r['scenario']}: {r['ivrkit_ms']:,.0f} / {r['livekit_getdtmftask_model_ms']:,.0f} / "
                 f"{r['pipecat_dtmfaggregator_model_ms']:,.0f} ms" for r in d["results"][:3]]
        rows.append(["4 completion after last key (ivrkit / LiveKit model / Pipecat model)", "; ".join(parts),
                     "models of GetDtmfTask (4 s debounce) and DTMFAggregator (2 s idle)", "-",
                     "~0 ms at max digits", _met(all(r["ivrkit_ms"] == 0 for r in d["results"][:3])), _cmd(d)])
    if "server_latency" in data:
        d = data["server_latency"]
        a, b, o = d["results"][0], d["results"][1], d["results"][2]
        rows.append(["5 real server: key → first prompt audio", f"p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms "
                     f"({a['presses']} presses, {a['failed']} failed)",
                     f"hand-written handler: p50 {b['p50_ms']:.1f} ms, p99 {b['p99_ms']:.1f} ms",
                     f"{o['p50_overhead_ms']:+.1f} ms p50", "p50 < 60 ms, overhead ≤ 5 ms", _met(o.get("target_met")),
                     _cmd(d, root=True)])
    if "concurrency" in data:
        d = data["concurrency"]
        sums = {r["side"]: r for r in d["results"] if r.get("summary")}
        names = {"ivrkit": "1 worker", "ivrkit-2w": "--workers 2", "handwritten": "hand-written worker"}

        def side(name: str) -> str:
            s = sums[name]
            runs = [r for r in d["results"] if r.get("side") == name and "calls" in r and not r.get("summary")]
            best = max((r for r in runs if r["held"]), key=lambda r: r["calls"], default=None)
            held = f"held to N={s['held_up_to']}" if s["held_up_to"] else "held at no N"
            fig = (f" (p99 {best['p99_ms']:.0f} ms, worker {best['worker_pct_per_call']:.1f} % of a core per call)"
                   if best else "")
            stop = f", not at {s['first_not_held']}" if s["first_not_held"] else ""
            return f"{names.get(name, name)}: {held}{fig}{stop}"

        ours = [side(n) for n in ("ivrkit", "ivrkit-2w") if n in sums]
        slopes = [f"{names.get(n, n)} {sums[n]['slope_pct_per_call']:.1f}" for n in ("ivrkit", "ivrkit-2w", "handwritten")
                  if n in sums and sums[n].get("slope_pct_per_call") is not None]
        held = [sums[n]["held_up_to"] or 0 for n in ("ivrkit", "ivrkit-2w") if n in sums]
        rows.append(["6 concurrency: calls of a menu mix held on 2 cores", "; ".join(ours),
                     side("handwritten") if "handwritten" in sums else "-",
                     ("worker % of a core per added call: " + ", ".join(slopes)) if slopes else "-",
                     "≥ 100 calls, p99 key → prompt ≤ 250 ms, no lost key", _met(max(held, default=0) >= 100) if held else "-",
                     _cmd(d, root=True)])
    if "report" in data:
        d = data["report"]
        r = d["results"][0]
        rows.append([f"7 ivrkit report, {r['calls']:,} call traces ({r['mb']:.0f} MB)",
                     f"{r['report_s_median']:.1f} s ({r['calls_per_s']:,} calls/s, peak RSS {r['peak_rss_mb']:.0f} MB)",
                     f"json.loads loop {r['json_loads_s_median']:.1f} s", f"{r['ratio_vs_json_loads']:.1f}x",
                     "10,000 calls in seconds", _met(r.get("target_met")), _cmd(d)])
    if "amd" in data:
        d = data["amd"]
        sums = {r["summary"]: r for r in d["results"] if "summary" in r}

        def share(name: str) -> str:
            r = sums[name]
            return f"{r['right'] / r['of']:.0%} ({r['right_quiet_lines'] / r['of_quiet_lines']:.0%})"

        n = sums["ivrkit"]["of"]
        rows.append(["8 answering-machine detection, rendered greetings",
                     f"{share('ivrkit')} of {n:,} clips right (on lines below the silence threshold)",
                     f"Asterisk rules alone: {share('asterisk_3_words')}; with 2 words: {share('asterisk_2_words')}",
                     "-", "report the confusion matrix", "-", _cmd(d)])
    if "inband" in data:
        rows.append(_inband_row(data["inband"]))
    if "inband_cost" in data:
        d = data["inband_cost"]
        r = d["results"][0]
        rows.append([f"10 in-band listening, {r['calls_per_batch']} SIP calls in a menu",
                     f"dtmf: inband {r['inband_cpu_pct_per_call']:.1f} % of a core per call",
                     f"key-only {r['key_only_cpu_pct_per_call']:.1f} % per call",
                     f"+{r['listening_cost_pct_per_call']:.1f} % per call", "-", "-", _cmd(d, root=True)])
    if "speech" in data:
        d = data["speech"]
        by = {(r["system"], r["condition"]): r for r in d["results"] if "system" in r}

        def acc(system: str) -> str:
            parts = []
            for cond in ("clean", "phone"):
                r = by.get((system, cond))
                if r is not None:
                    digits = f", digits {r['digits_accuracy'] * 100:.0f} %" if "digits_accuracy" in r else ""
                    parts.append(f"{cond}: menu {r['menu_accuracy'] * 100:.0f} %{digits}")
            return "; ".join(parts)
        ours = by.get(("grammar + endpointer (ivrkit)", "clean"), {})
        lat = f"; end of speech → result {ours['menu_latency_p50_ms']:.0f} ms" if ours.get("menu_latency_p50_ms") else ""
        rows.append(["11 offline speech (pocketsphinx, eSpeak voices)", acc("grammar + endpointer (ivrkit)") + lat,
                     "unrestricted LM: " + acc("unrestricted LM (baseline)"), "-", "-", "-", _cmd(d)])
    if "joins" in data:
        d = data["joins"]
        by = {("turns" if "turns" in r["side"] else "straight"): r for r in d["results"]}
        t, b = by["turns"], by.get("straight")
        rows.append([f"12 room joins, {t['threads']} threads of a process at once",
                     f"in turns: {t['panicked_rounds']} of {t['rounds']} rounds panicked, {t['joined']}/{t['of']} joined, "
                     f"last {t['join_ms_max']:.0f} ms",
                     f"straight: {b['panicked_rounds']} of {b['rounds']} rounds panicked, {b['joined']}/{b['of']} joined"
                     if b else "-", "-", "no FFI panic", _met(t["panicked_rounds"] == 0), _cmd(d, root=True)])
    if "prompt_cpu" in data:
        d = data["prompt_cpu"]
        res = d["results"]

        def fig(side: str, phase: str) -> str:
            return ", ".join(f"{r['calls']} calls {r[side + '_pct_per_call']:.1f} %"
                             + (" (saturated)" if r.get("saturated", {}).get(side) else "")
                             for r in res if r["phase"] == phase)

        setup = next((r for r in res if r["phase"] == "setup"), None)
        rows.append(["13 worker CPU per call (% of a core): prompt playing | waiting in a menu | a key a second",
                     f"{fig('now', 'play')} | {fig('now', 'idle')} | {fig('now', 'keys')}"
                     + (f"; set-up {setup['now_cpu_ms_per_call']:.0f} ms CPU per call" if setup else ""),
                     f"before: {fig('before', 'play')} | {fig('before', 'idle')}; queue-less source: "
                     f"{fig('queueless', 'play')} | {fig('queueless', 'idle')}",
                     ", ".join(f"{r['before_pct_per_call'] / r['now_pct_per_call']:.1f}x" for r in res
                               if r["phase"] == "play" and r["now_pct_per_call"] > 0) + " (playing)",
                     "flat per call as calls grow", "-", _cmd(d, root=True)])
    return rows


def _inband_row(d: dict[str, Any]) -> list[Any]:
    """Row 9: the Q.24 cases that must always or never be heard, talk-off on speech, CPU."""
    detect = [r for r in d["results"] if r["kind"] == "detection"]
    false = [r for r in d["results"] if r["kind"] == "false_keys"]
    cpu = next(r for r in d["results"] if r["kind"] == "cpu")
    speech = [r for r in false if r["audio"].startswith("speech")]  # clean, and with noise added
    minutes = sum(r["seconds"] for r in false if r["audio"].startswith("speech, ")) / 60

    def side(name: str) -> tuple[str, bool]:
        always = [r[f"{name}_rate"] for r in detect if r["q24"] == "always"]
        never = [r[f"{name}_rate"] for r in detect if r["q24"] == "never"]
        talk = sum(r[f"{name}_false"] for r in speech)
        others = sum(r[f"{name}_false"] for r in false if r not in speech)
        text = (f"must-hear cases {min(always):.0%}-{max(always):.0%} heard, must-reject {min(never):.0%}-{max(never):.0%}; "
                f"{talk} false keys in {minutes:.0f} min of eSpeak speech (x2: clean, with noise), {others} in silence/noise; "
                f"{cpu[f'{name}_cpu_ms_per_audio_s']:.1f} ms CPU per s of audio")
        return text, min(always) == 1.0 and max(never) == 0.0 and talk == 0 and others == 0

    ours, met = side("ivrkit")
    theirs, _ = side("textbook")
    return ["9 in-band DTMF (Q.24 grid, talk-off, CPU)", ours, f"textbook block Goertzel: {theirs}", "-",
            "Q.24: >= 40 ms, +-1.5 %, twist 8/4 dB always; < 23 ms, +-3.5 % never; no talk-off", _met(met), _cmd(d)]


def render(data: dict[str, dict[str, Any]]) -> str:
    out = []
    m = next(iter(data.values()))["machine"] if data else None
    cpus = sorted({d["machine"]["cpu"] for d in data.values()})
    if m and len(cpus) > 1:  # rows re-run on another machine of this kind: never let one CPU speak for all
        out.append(f"Measured on {len(cpus)} machines of the same kind ({'; '.join(cpus)}), {m['cores']} cores, "
                   f"{m['python']} — see each section for its CPU, exact run time, load average and ivrkit commit.")
        out.append("")
    elif m:
        out.append(f"Measured on {m['cpu']}, {m['cores']} cores, {m['mem_total_mb']} MB RAM, {m['os']}, "
                   f"{m['python']} — see each section for its exact run time, load average and ivrkit commit.")
        out.append("")
    out.append(table(["row", "ivrkit", "baseline (same run)", "ratio", "target", "met", "command"], summary(data)))
    for name in ORDER:
        if name not in data:
            continue
        d = data[name]
        m = d["machine"]
        out += ["", f"### {d['title']}", "",
                f"{_cmd(d, root=name in ('server_latency', 'concurrency', 'inband_cost'))} — {m['when_utc']} UTC, ivrkit {m['ivrkit_commit']}, load average {m['load_avg_1m']} "
                f"at start, {m['cpu']} x{m['cores']}, {m['python']}", ""]
        for t in d.get("tables", []):
            out += [t, ""]
        for note in d.get("notes", []):
            out.append(f"- {note}")
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    text = render(_load())
    print(text)
    if args.write:
        readme = README.read_text()
        if START not in readme or END not in readme:
            print(f"{README} has no {START} ... {END} section", file=sys.stderr)
            return 1
        head, rest = readme.split(START, 1)
        _, tail = rest.split(END, 1)
        README.write_text(f"{head}{START}\n{text}{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
