"""The report as plain text: one block per flow, figures a person reads top to bottom."""

from __future__ import annotations

from ivrkit.report.aggregate import FlowFigures, Report

#: Invalid keys listed per flow.
TOP_KEYS = 5


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def flow_text(f: FlowFigures) -> str:
    lines = [f"flow {f.flow}: {f.calls} calls",
             f"  contained (ended without a person): {f.contained} ({pct(f.contained, f.calls)})",
             f"  transferred: {f.ended_by['transfer']} ({pct(f.ended_by['transfer'], f.calls)})",
             "  ended by: " + ", ".join(f"{by} {n}" for by, n in f.ended_by.most_common()),
             "  drop-off (callers who hung up in a state, of those who reached it):"]
    for state in f.funnel():
        lines.append(f"    {state:<24} reached {f.reached[state]:>6}  hung up {f.hung_up_in[state]:>6}"
                     f"  {pct(f.hung_up_in[state], f.reached[state]):>6}")
    asked = f.asked()
    if asked:
        lines.append("  no input / no match (per entry into the state):")
        for state in asked:
            n = f.entries[state]
            lines.append(f"    {state:<24} {f.asks.get(state, '?'):<8} entries {n:>6}  no input {f.no_input[state]:>5}"
                         f" {pct(f.no_input[state], n):>6}  no match {f.no_match[state]:>5} {pct(f.no_match[state], n):>6}")
    if f.invalid_keys:
        keys = ", ".join(f"{k} in {s} ({n})" for (s, k), n in f.invalid_keys.most_common(TOP_KEYS))
        lines.append(f"  most-pressed invalid keys: {keys}")
    if f.terminal_times:
        lines.append("  median time to the end:")
        for by, state in sorted(f.terminal_times):
            n = sum(f.terminal_times[(by, state)].values())
            lines.append(f"    {by + ' in ' + state:<32} {f.median_time(by, state):7.1f} s  ({n} calls)")
    return "\n".join(lines)


def report_text(report: Report) -> str:
    blocks = [flow_text(report.flows[name]) for name in sorted(report.flows)]
    if report.skipped_count:
        blocks.append(f"{report.skipped_count} file(s) were not call traces:\n" +
                      "\n".join(f"  {s}" for s in report.skipped))
    return "\n\n".join(blocks) + "\n"
