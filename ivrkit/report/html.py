"""The report as one self-contained HTML page: inline CSS, inline SVG, no script, no link out —
a file that can be mailed or attached to a ticket and still open.

The flow's picture is `ivrkit graph`'s, drawn by Graphviz with each arrow as wide as its
traffic and labelled with its count. Without the flow file (`--flows`) or without Graphviz the
page shows the moves as a table instead, and says why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from html import escape

from ivrkit.errors import GraphvizError
from ivrkit.flow.model import Flow
from ivrkit.report.aggregate import FlowFigures, Report
from ivrkit.report.text import TOP_KEYS, pct

#: Widest arrow (Graphviz points) — the busiest edge; an edge nobody took is a hairline.
MAX_WIDTH = 7.0

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:22px}
table{border-collapse:collapse;margin:4px 0 8px} th,td{padding:3px 10px;text-align:right;border-bottom:1px solid #eee}
th{background:#f5f5f5} td:first-child,th:first-child{text-align:left}
.bar{display:inline-block;height:10px;background:#d9534f;vertical-align:middle;margin-left:6px}
.picture svg{max-width:100%;height:auto;border:1px solid #eee}
.note{color:#777}
.l2 td:nth-child(2),.l2 th:nth-child(2),.l3 td:nth-child(-n+3),.l3 th:nth-child(-n+3){text-align:left}
"""


def report_html(report: Report, flows: Mapping[str, Flow] | None = None) -> str:
    flows = flows or {}
    body = [f"<h1>ivrkit report</h1><p class=note>{sum(f.calls for f in report.flows.values())} calls, "
            f"{len(report.flows)} flow(s)</p>"]
    body.extend(_flow(report.flows[name], flows.get(name)) for name in sorted(report.flows))
    if report.skipped_count:
        items = "".join(f"<li>{escape(s)}</li>" for s in report.skipped)
        body.append(f"<h2>{report.skipped_count} file(s) were not call traces</h2><ul>{items}</ul>")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>ivrkit report</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")


def _flow(f: FlowFigures, flow: Flow | None) -> str:
    transferred, hung_up = f.ended_by["transfer"], f.ended_by["caller_hangup"]
    cards = [("calls", str(f.calls), ""), ("contained", pct(f.contained, f.calls), f"{f.contained} without a person"),
             ("transferred", pct(transferred, f.calls), f"{transferred} calls"),
             ("caller hung up", pct(hung_up, f.calls), f"{hung_up} calls")]
    out = [f"<h2>flow {escape(f.flow)}</h2><div class=cards>"]
    out += [f"<div class=card>{escape(k)}<b>{escape(v)}</b><span class=note>{escape(n)}</span></div>" for k, v, n in cards]
    out.append("</div><p>ended by: " + escape(", ".join(f"{by} {n}" for by, n in f.ended_by.most_common())) + "</p>")
    out.append("<h3>Where callers give up</h3><table><tr><th>state</th><th>reached</th><th>hung up here</th>"
               "<th>of those who reached it</th></tr>")
    for s in f.funnel():
        share = f.hung_up_in[s] / f.reached[s] if f.reached[s] else 0.0
        out.append(f"<tr><td>{escape(s)}</td><td>{f.reached[s]}</td><td>{f.hung_up_in[s]}</td>"
                   f"<td>{pct(f.hung_up_in[s], f.reached[s])}<span class=bar style='width:{share * 120:.0f}px'></span></td></tr>")
    out.append("</table>")
    if f.asked():
        out.append("<h3>No input and no match</h3><table class=l2><tr><th>state</th><th>asks for</th><th>entries</th>"
                   "<th>no input</th><th>rate</th><th>no match</th><th>rate</th></tr>")
        for s in f.asked():
            n = f.entries[s]
            out.append(f"<tr><td>{escape(s)}</td><td>{escape(f.asks.get(s, '?'))}</td><td>{n}</td><td>{f.no_input[s]}</td>"
                       f"<td>{pct(f.no_input[s], n)}</td><td>{f.no_match[s]}</td><td>{pct(f.no_match[s], n)}</td></tr>")
        out.append("</table>")
    if f.invalid_keys:
        out.append("<h3>Most-pressed invalid keys</h3><table class=l2><tr><th>menu</th><th>key</th><th>times</th></tr>")
        out += [f"<tr><td>{escape(s)}</td><td>{escape(k)}</td><td>{n}</td></tr>" for (s, k), n in f.invalid_keys.most_common(TOP_KEYS)]
        out.append("</table>")
    if f.terminal_times:
        out.append("<h3>Median time to the end</h3><table class=l2><tr><th>ended by</th><th>in state</th><th>median</th><th>calls</th></tr>")
        for by, s in sorted(f.terminal_times):
            out.append(f"<tr><td>{escape(by)}</td><td>{escape(s)}</td><td>{f.median_time(by, s):.1f} s</td>"
                       f"<td>{sum(f.terminal_times[(by, s)].values())}</td></tr>")
        out.append("</table>")
    out.append(_picture(f, flow))
    return "".join(out)


def _picture(f: FlowFigures, flow: Flow | None) -> str:
    """The flow drawn with its traffic, or the moves as a table (and why there is no picture)."""
    why = "no flow file with this name was given (--flows DIR)"
    if flow is not None:
        try:
            return "<h3>Traffic on the flow</h3><div class=picture>" + traffic_svg(f, flow) + "</div>"
        except GraphvizError as e:  # GraphvizMissing too: its message says how to get it
            why = str(e)
    rows = "".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td><td>{escape(why_)}</td><td>{n}</td></tr>"
                   for (a, b, why_), n in f.moves.most_common())
    return (f"<h3>Moves</h3><p class=note>No picture: {escape(why)}.</p>"
            f"<table class=l3><tr><th>from</th><th>to</th><th>why</th><th>calls</th></tr>{rows}</table>")


def traffic_svg(f: FlowFigures, flow: Flow) -> str:
    """`ivrkit graph`'s SVG of `flow`, each edge labelled with how often calls took it and each
    arrow as wide as that traffic; raises `GraphvizError` when Graphviz is missing or fails."""
    from ivrkit.graph.dot import to_dot
    from ivrkit.graph.model import build_graph
    from ivrkit.graph.render import render

    graph = build_graph(flow)
    busiest = max(f.edges.values(), default=1)
    edges = tuple(replace(e, label=f"{e.label} · {f.edges[e.id]}") if e.counted or f.edges[e.id] else e for e in graph.edges)
    widths = {e.id: 0.6 + (MAX_WIDTH - 0.6) * f.edges[e.id] / busiest for e in graph.edges if f.edges[e.id]}
    svg = render(to_dot(replace(graph, edges=edges), widths=widths), "svg").decode()
    return re.sub(r"^.*?(?=<svg)", "", svg, flags=re.S)  # the XML prolog and doctype cannot sit inside HTML
