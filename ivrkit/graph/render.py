"""SVG and PNG through Graphviz's `dot` program (Debian/Ubuntu: `apt-get install graphviz`).

Graphviz is a program, not a Python package: ivrkit runs it when it is on PATH and otherwise
raises `GraphvizMissing` with one line saying how to get it. Mermaid and DOT text never need it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Collection

from ivrkit.errors import GraphvizError, GraphvizMissing
from ivrkit.graph.dot import to_dot
from ivrkit.graph.mermaid import to_mermaid
from ivrkit.graph.model import FlowGraph

INSTALL_HINT = ("Graphviz's `dot` is not on PATH: install it (Debian/Ubuntu: `apt-get install graphviz`, "
                "macOS: `brew install graphviz`), or write .mmd or .dot, which need nothing")
#: Seconds `dot` may take; a flow of a thousand states lays out in a few.
TIMEOUT = 120.0


def render(dot_text: str, fmt: str, *, program: str = "dot") -> bytes:
    """`dot_text` laid out and drawn as `fmt` ("svg" or "png")."""
    exe = shutil.which(program)
    if exe is None:
        raise GraphvizMissing(INSTALL_HINT)
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise GraphvizError(f"{program} took more than {TIMEOUT:g} s") from None
    if proc.returncode != 0:
        raise GraphvizError(f"{program} -T{fmt} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


#: Output formats by file extension; the first is the default (printed to stdout).
FORMATS: dict[str, str] = {".mmd": "mermaid", ".mermaid": "mermaid", ".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png"}


def draw(graph: FlowGraph, fmt: str, untested: Collection[str] | None = None) -> bytes:
    """`graph` as `fmt` ("mermaid", "dot", "svg", "png"); SVG/PNG run Graphviz (see `render`),
    and an SVG's elements carry the graph's ids (`ivrkit.graph.dot.drawn_as`)."""
    if fmt == "mermaid":
        return to_mermaid(graph, untested).encode()
    if fmt == "dot":
        return to_dot(graph, untested).encode()
    return render(to_dot(graph, untested, ids=True), fmt)  # SVG elements named: a page can light them
