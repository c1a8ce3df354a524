"""The rules of the house (docs/architecture.md), checked on the source: the engine imports
nothing from LiveKit or the adapters and reads no clock but the injected one; no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ivrkit"
ADAPTERS = ("livekit", "console", "dialpad", "cli")
#: The one engine module allowed to read a clock: it *is* the production clock.
CLOCK = "ivrkit.clock"
WALL_CLOCK = {("time", "time"), ("time", "monotonic"), ("time", "perf_counter"), ("datetime", "now"),
              ("datetime", "utcnow"), ("date", "today")}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def _imports(name: str, tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            base = node.module
            if node.level:  # relative: resolve against this module's package
                pkg = name.split(".")[: -node.level] if not name.endswith("__init__") else name.split(".")
                base = ".".join([*pkg, node.module])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


MODULES = _modules()
ENGINE = sorted(m for m in MODULES if m.split(".")[1:2] and m.split(".")[1] not in ADAPTERS)


@pytest.mark.parametrize("module", ENGINE)
def test_the_engine_imports_no_livekit_and_no_adapter(module: str) -> None:
    bad = sorted(i for i in _imports(module, MODULES[module])
                 if i.split(".")[0] == "livekit" or i.split(".")[:2] in (["ivrkit", a] for a in ADAPTERS))
    assert not bad, f"{module} is engine code but imports {bad} (docs/architecture.md: adapters depend on the engine)"


@pytest.mark.parametrize("module", [m for m in ENGINE if m != CLOCK])
def test_the_engine_reads_no_wall_clock(module: str) -> None:
    calls = []
    for node in ast.walk(MODULES[module]):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (node.value.id, node.attr) in WALL_CLOCK:
            calls.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
    assert not calls, f"{module} reads the wall clock: {calls}; take time from the channel's Clock"


def test_no_import_cycle_between_ivrkit_modules() -> None:
    graph = {m: {i for i in _imports(m, t) if i in MODULES and i != m} for m, t in MODULES.items()}
    # a package's __init__ re-exporting its modules is not a cycle of concepts: leave those edges out
    graph = {m: {i for i in deps if not (i == m.rsplit(".", 1)[0])} for m, deps in graph.items()}
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for dep in sorted(graph[m]):
            if seen.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in seen:
                visit(dep)
        stack.pop()
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m)
