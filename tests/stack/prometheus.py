"""A real Prometheus server (Debian's `prometheus`, installed by install.sh) inside the test
namespace, scraping a worker's metrics port; and plain HTTP GETs made from inside the namespace.

Why inside the namespace, on 127.0.0.1: the worker's ports are the namespace's, and test traffic
may only go to loopback or to the namespace's own address (tests/stack/README.md). The test
process itself stays outside: each GET runs on a thread that joined the namespace
(`sip.run_in_netns`), so no Python interpreter is started per query.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .process import NsProcess
from .sip import run_in_netns
from .stack import Stack

#: Prometheus listens here, inside the namespace only.
PORT = 19090


def binary() -> str | None:
    return shutil.which("prometheus")


def get(stack: Stack, url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET `url` from inside the namespace: (status, body); an HTTP error status is returned,
    a refused connection raises OSError."""

    async def fetch() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as e:
            return int(e.code), e.read().decode()

    return run_in_netns(stack.ns, fetch, timeout + 5)


@dataclass
class Prometheus:
    """A running server; `query(expr)` asks its HTTP API (`/api/v1/query`)."""

    stack: Stack
    process: NsProcess
    url: str

    @classmethod
    def start(cls, stack: Stack, targets: list[str], workdir: Path, interval: float = 1.0) -> Prometheus:
        """Start it scraping `targets` ("127.0.0.1:PORT") every `interval` seconds; returns once
        it answers `/-/ready`."""
        exe = binary()
        if exe is None:
            raise RuntimeError("prometheus not found on PATH; install it with `bash tests/stack/install.sh`")
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": f"{interval:g}s", "evaluation_interval": f"{interval:g}s"},
            "scrape_configs": [{"job_name": "ivrkit", "scrape_interval": f"{interval:g}s",
                                "scrape_timeout": f"{interval:g}s", "static_configs": [{"targets": targets}]}],
        }))
        argv = [exe, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{PORT}", "--log.level=warn"]
        proc = stack.start(argv, name="prometheus")
        prom = cls(stack, proc, f"http://127.0.0.1:{PORT}")
        deadline = time.monotonic() + 30
        while True:
            try:
                if get(stack, prom.url + "/-/ready")[0] == 200:
                    return prom
            except OSError:
                pass
            if not proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not become ready:\n{proc.log_tail()}")
            time.sleep(0.2)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant query's result vector: [{"metric": {labels}, "value": [t, "v"]}, ...]."""
        code, body = get(self.stack, f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        answer = json.loads(body)
        if code != 200 or answer.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed ({code}): {body[:500]}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of `expr`, or None when it has no sample."""
        result = self.query(expr)
        if not result:
            return None
        assert len(result) == 1, f"{expr!r} has {len(result)} series: {result}"
        return float(result[0]["value"][1])

    def wait_for(self, expr: str, expected: float, timeout: float = 15.0) -> float:
        """Poll until `expr` reads `expected` (scrapes come every interval); the last value read
        is in the error otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.value(expr)
            if got == expected:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} = {got}, expected {expected} (waited {timeout:g} s)")
            time.sleep(0.5)

    def targets_up(self) -> list[str]:
        """Scrape targets whose last scrape succeeded."""
        code, body = get(self.stack, self.url + "/api/v1/targets")
        active = json.loads(body)["data"]["activeTargets"]
        return [t["scrapeUrl"] for t in active if t.get("health") == "up"]
