"""What a JSON-lines trace says, without its numbers: for tests that look for a PIN in it.

Why: a trace written on a real clock has timestamps such as 14882.432114, which hold a PIN's
digits by chance (two fresh-clone CI runs failed so); a digit a trace leaks is always a text
(a key, a prompt, a collected value), never a number."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def trace_texts(path: Path) -> str:
    """Every key and text value of the trace at `path`, one per line."""
    def texts(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from texts(v)
        elif isinstance(value, list):
            for v in value:
                yield from texts(v)

    return "\n".join(t for line in path.read_text().splitlines() if line.strip() for t in texts(json.loads(line)))
