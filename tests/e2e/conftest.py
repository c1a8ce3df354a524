"""Fixtures for end-to-end tests against a real livekit-server in a private network namespace.

Fixtures:
- `stack` (session): a `stack.Stack` (tests/stack/stack.py): namespace + running server.
- `room_name` (function): a room name unique to the test.
- `go_caller_built` (session): skips (or fails, see below) when the Go caller was not built.
- `_no_pin_in_any_output` (session, autouse): after the last test, every log and trace the
  session wrote (`testenv.output_dirs()`) is searched for every PIN the suite types
  (`testenv.TYPED_PINS`); a PIN found fails the run with its file and line.

The harness lives in tests/stack and is imported as the top-level package `stack`: this file
puts tests/ on sys.path (tests/e2e is not a package, so pytest imports these modules by their
basename and does not reach a sibling directory).

Skips name what is missing and the install command. With IVRKIT_STACK_REQUIRED=1 (CI on a
machine that should run them) the same reasons fail the tests instead of skipping them.
On a failing test, the server's log tail and those of processes started during the test are
added to the report.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stack.stack import Stack, go_caller_binary, missing_prerequisites  # noqa: E402
from stack.testenv import TYPED_PINS, log_dir, output_dirs, pins_in_output, unavailable  # noqa: E402

_STARTED = pytest.StashKey[float]()
_active: list[Stack] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _no_pin_in_any_output() -> Iterator[None]:
    """Set up first, so torn down last: after every worker, caller and server has stopped and
    written its last line. The per-test checks look at one call; this one also sees what a
    test did not think to check (a server log, a guard's log, a trace nobody read)."""
    yield
    dirs = output_dirs()
    found = pins_in_output(dirs)
    print(f"\nPIN sweep: {len(TYPED_PINS)} PINs searched for in {len(dirs)} folders of logs and traces: "
          f"{len(found)} found")
    if found:
        pytest.fail("a PIN the suite typed is in a log or trace:\n" + "\n".join(found[:50]), pytrace=False)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    reason = missing_prerequisites()
    if reason:
        unavailable(reason)
    logs = log_dir()
    st = Stack.up(logs)  # prerequisites are there, so a failure here is an error, not a skip
    _active.append(st)
    print(f"\nstack: livekit-server {st.url} in netns {st.ns.name} ({st.ns.link}), "
          f"ready after {st.server.ready_after:.2f} s, logs in {logs}")
    try:
        yield st
    finally:
        _active.remove(st)
        leftover = st.down()
        if leftover:
            print(f"stack: killed processes left in {st.ns.name}: {leftover}")


@pytest.fixture(scope="session")
def go_caller_built() -> Path:
    binary = go_caller_binary()
    if not binary.is_file():
        if shutil.which("go") is None:
            unavailable(f"Go not found on PATH, so the Go caller is not built ({binary}); install Go >= 1.26.8, "
                         "then `bash tests/stack/install.sh`")
        unavailable(f"Go caller not built at {binary}; build it with `bash tests/stack/install.sh`")
    return binary


@pytest.fixture
def room_name(request: pytest.FixtureRequest) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:40]
    return f"{base}-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"


@pytest.fixture(autouse=True)
def _stop_test_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Processes a test started in the namespace end with the test (callers leave the room)."""
    started = time.monotonic()
    request.node.stash[_STARTED] = started
    yield
    for st in _active:
        st.stop_processes(since=started)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _active:
        since = item.stash.get(_STARTED, 0.0)
        for st in _active:
            for title, tail in st.failure_report(since):
                report.sections.append((title, tail or "(empty)"))
    return report
