"""Coverage counts per flow, the `.ivrkit-coverage.json` file, and the text report.

The file is self-contained: for each flow it lists *every* counted edge of the flow's graph
with the number of times the tests took it (0 = untested), and every state with its visits, so
a tool can read it without loading the flow. `ivrkit graph --coverage` compares it with the
flow as it is now: an edge the file does not know (the flow changed since) counts as untested.

    {"version": 1, "flows": [{"file": "/abs/flows/bank.yaml", "flow": "acme-bank",
                              "edges": {"main:key:1": 4, "main:no_match": 0, ...},
                              "states": {"main": 9, ...}}]}
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivrkit.coverage.taken import taken
from ivrkit.errors import CoverageDataError
from ivrkit.flow.model import Flow
from ivrkit.graph.model import FlowGraph, build_graph
from ivrkit.trace import TraceEvent

DEFAULT_FILE = ".ivrkit-coverage.json"
VERSION = 1


@dataclass(slots=True)
class FlowCoverage:
    """What the tests took of one flow (`edges`/`states`: every counted one, 0 = never)."""

    file: str
    flow: str
    edges: dict[str, int]
    states: dict[str, int]
    names: dict[str, str] = field(default_factory=dict)  # edge id -> how a person reads it

    @property
    def key(self) -> str:
        return f"{self.file}::{self.flow}"

    def untested(self) -> list[str]:
        return [e for e, n in self.edges.items() if n == 0]

    @property
    def percent(self) -> float:
        return percent(len(self.edges) - len(self.untested()), len(self.edges))

    @classmethod
    def empty(cls, flow: Flow, graph: FlowGraph | None = None) -> FlowCoverage:
        graph = graph or build_graph(flow)
        counted = graph.counted_edges()
        return cls(flow.file, flow.name, {e.id: 0 for e in counted}, {s: 0 for s in flow.states},
                   {e.id: graph.describe(e) for e in counted})

    def add(self, flow: Flow, events: Iterable[TraceEvent]) -> None:
        """Count what one call took (edges the graph does not count are left out)."""
        edges, states = taken(flow, events)
        for edge, n in edges.items():
            if edge in self.edges:
                self.edges[edge] += n
        for state, n in states.items():
            if state in self.states:
                self.states[state] += n


def percent(covered: int, total: int) -> float:
    return 100.0 if total == 0 else 100.0 * covered / total


@dataclass(slots=True)
class CoverageData:
    flows: dict[str, FlowCoverage] = field(default_factory=dict)

    def record(self, flow: Flow, events: Iterable[TraceEvent]) -> None:
        """Add one finished call of `flow`."""
        key = f"{flow.file}::{flow.name}"
        entry = self.flows.get(key)
        if entry is None:
            entry = self.flows[key] = FlowCoverage.empty(flow)
        entry.add(flow, events)

    def total(self) -> tuple[int, int]:
        """(edges taken, edges) over every flow."""
        edges = [n for f in self.flows.values() for n in f.edges.values()]
        return sum(1 for n in edges if n), len(edges)

    # --- the file ----------------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({"version": VERSION, "flows": [
            {"file": f.file, "flow": f.flow, "edges": f.edges, "states": f.states, "names": f.names}
            for f in self.flows.values()]}, indent=1) + "\n"

    def write(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> CoverageData:
        try:
            raw: Any = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise CoverageDataError(f"{path}: no such coverage file (run `pytest --ivr-cov` to write it)") from None
        except (OSError, ValueError) as exc:
            raise CoverageDataError(f"{path}: not a readable coverage file: {exc}") from None
        if not isinstance(raw, dict) or raw.get("version") != VERSION or not isinstance(raw.get("flows"), list):
            raise CoverageDataError(f"{path}: not an ivrkit coverage file (version {VERSION}); write it with `pytest --ivr-cov`")
        data = cls()
        try:
            for item in raw["flows"]:
                entry = FlowCoverage(str(item["file"]), str(item["flow"]), {str(k): int(v) for k, v in item["edges"].items()},
                                     {str(k): int(v) for k, v in item["states"].items()},
                                     {str(k): str(v) for k, v in item.get("names", {}).items()})
                data.flows[entry.key] = entry
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CoverageDataError(f"{path}: a flow entry is malformed ({exc!r})") from None
        return data

    def entry(self, flow: Flow, source: str = DEFAULT_FILE) -> FlowCoverage:
        """The data of `flow` (matched on its file; on its name when the file moved). Raises
        `CoverageDataError` naming the flows it has when `flow` is not among them."""
        entry = self.flows.get(f"{flow.file}::{flow.name}")
        if entry is None:
            same_name = [f for f in self.flows.values() if f.flow == flow.name]
            if len(same_name) != 1:
                known = ", ".join(sorted(f"{f.flow} ({f.file})" for f in self.flows.values())) or "none"
                raise CoverageDataError(f"{source} has no data for flow '{flow.name}' ({flow.file}); flows in it: {known}")
            entry = same_name[0]
        return entry

    def untested(self, flow: Flow, graph: FlowGraph, source: str = DEFAULT_FILE) -> set[str]:
        """The counted edges of `graph` no test took, by this data; an edge the data does not
        know (the flow changed since) is untested."""
        entry = self.entry(flow, source)
        return {e.id for e in graph.counted_edges() if entry.edges.get(e.id, 0) == 0}

    def unvisited(self, flow: Flow, source: str = DEFAULT_FILE) -> set[str]:
        """The states of `flow` no test entered."""
        entry = self.entry(flow, source)
        return {s for s in flow.states if entry.states.get(s, 0) == 0}


def report(data: CoverageData, *, relative_to: str | None = None) -> str:
    """The table `pytest --ivr-cov` prints: per flow edges / taken / cover and states visited,
    then each untested edge by name; a TOTAL row."""
    rows = []
    files = Counter(f.file for f in data.flows.values())
    for f in sorted(data.flows.values(), key=lambda f: f.key):
        name = _display(f.file, relative_to)
        if files[f.file] > 1 or not os.path.isfile(f.file):  # flows from text share "<string>"
            name = f"{name} ({f.flow})"
        rows.append((f, name))
    width = max([len(n) for _, n in rows] + [len("TOTAL"), len("Flow")])
    rule = "-" * (width + 36)
    out = [f"{'Flow':<{width}}  {'Edges':>6}  {'Taken':>6}  {'Cover':>6}  {'States':>9}", rule]
    for f, name in rows:
        took = len(f.edges) - len(f.untested())
        seen = sum(1 for n in f.states.values() if n)
        out.append(f"{name:<{width}}  {len(f.edges):>6}  {took:>6}  {f.percent:>5.0f}%  {f'{seen}/{len(f.states)}':>9}")
        for i, edge in enumerate(f.untested()):
            out.append(f"{'  untested:' if i == 0 else '':<11} {f.names.get(edge, edge)}")
    took, total = data.total()
    out.append(rule)
    out.append(f"{'TOTAL':<{width}}  {total:>6}  {took:>6}  {percent(took, total):>5.0f}%")
    return "\n".join(out)


def _display(file: str, relative_to: str | None) -> str:
    if relative_to and os.path.isabs(file):
        rel = os.path.relpath(file, relative_to)
        if not rel.startswith(".."):
            return rel
    return file
