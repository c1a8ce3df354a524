"""`pytest --ivr-cov`: which edges of each flow the tests took, like coverage.py for flows.

Registered through the `pytest11` entry point, so it is there whenever ivrkit is installed and
does nothing until asked:

    pytest --ivr-cov                          # table per flow + .ivrkit-coverage.json
    pytest --ivr-cov-fail-under=100           # the same, and fail the run below 100 %
    ivrkit graph flows/bank.yaml --coverage .ivrkit-coverage.json -o bank.svg   # untested in red

Every `FlowTester` call, once finished, hands its flow and trace to `FINISHED_CALLS`
(`ivrkit.testing`); this plugin reads which edges the trace took (`ivrkit.coverage.taken`).
Only flows some test ran appear — a flow no test loads is not in the table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivrkit.coverage.data import DEFAULT_FILE, CoverageData, report
from ivrkit.flow.model import Flow
from ivrkit.testing import FINISHED_CALLS
from ivrkit.trace import Trace


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ivrkit", "ivrkit flow coverage")
    group.addoption("--ivr-cov", action="store_true", default=False,
                    help="record which edges of each flow the FlowTester calls took; print a table per flow")
    group.addoption("--ivr-cov-fail-under", type=float, default=None, metavar="N",
                    help="fail the run when fewer than N%% of all flow edges were taken (implies --ivr-cov)")
    group.addoption("--ivr-cov-data", default=DEFAULT_FILE, metavar="FILE",
                    help=f"where to write the coverage data (default {DEFAULT_FILE}; `ivrkit graph --coverage FILE` reads it)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("ivr_cov") or config.getoption("ivr_cov_fail_under") is not None:
        config.pluginmanager.register(FlowCoverage(config), "ivrkit-flow-coverage")


class FlowCoverage:
    """The active plugin: collects calls, writes the file, prints the table, enforces the floor."""

    def __init__(self, config: pytest.Config) -> None:
        self.data = CoverageData()
        self.fail_under: float | None = config.getoption("ivr_cov_fail_under")
        self.root = config.invocation_params.dir
        self.path = Path(config.getoption("ivr_cov_data"))
        if not self.path.is_absolute():
            self.path = self.root / self.path
        self.failed = False
        FINISHED_CALLS.append(self._finished)

    def _finished(self, flow: Flow, trace: Trace) -> None:
        self.data.record(flow, trace)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._finished in FINISHED_CALLS:
            FINISHED_CALLS.remove(self._finished)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.data.write(self.path)
        took, total = self.data.total()
        if self.fail_under is not None and 100.0 * took / max(total, 1) < self.fail_under and total:
            self.failed = True
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.fail_under is not None and not total:
            self.failed = True  # asked for a floor and no test ran a flow: that is a failure too
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        tr = terminalreporter
        tr.write_sep("-", "ivrkit flow coverage: edges of each flow the tests took")
        if not self.data.flows:
            tr.write_line("no FlowTester call ran: no flow coverage")
        else:
            tr.write_line(report(self.data, relative_to=str(self.root)))
        tr.write_line(f"coverage data written to {self.path}")
        if self.failed:
            took, total = self.data.total()
            got = 100.0 * took / total if total else 0.0
            tr.write_line(f"FAIL Required flow edge coverage of {self.fail_under:g}% not reached. Total coverage: {got:.2f}%",
                          red=True, bold=True)
