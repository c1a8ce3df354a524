"""Processes started inside the test namespace, with their output kept in a log file.

Why: the server, the worker and the callers are real processes; a failing test is only
diagnosable if each one's output survives and can be shown (tail) next to the failure. Each
process is stopped by its own PID (`ip netns exec` execs the command, so the PID is the
command's), never by name.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .testenv import note_output

#: Log lines of a worker that mean a task or resource leaked, whatever their level.
LEAK = re.compile(r"Task was destroyed but it is pending|Task exception was never retrieved|"
                  r"was never awaited|Unclosed|unclosed|leak|ran past its time limit", re.I)


class ProcessError(RuntimeError):
    """A process exited early, or did not print what was awaited in time."""


@dataclass
class NsProcess:
    """A running process inside a namespace.

    `log_path` holds stderr (and stdout unless `pipe_stdout`). With `pipe_stdin` /
    `pipe_stdout` the caller talks to it over pipes (the JSON-lines test callers do).
    """

    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)
    _log_file: IO[bytes] | None = None

    @classmethod
    def start(
        cls,
        prefix: Sequence[str],
        argv: Sequence[str],
        *,
        name: str,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        pipe_stdin: bool = False,
        pipe_stdout: bool = False,
    ) -> NsProcess:
        """Start `argv` behind `prefix` (e.g. `ip netns exec NS`), output to `<log_dir>/<name>.log`.

        `env` is added to this process's environment. The name gets a counter suffix if a log of
        that name exists already, so a second "worker" keeps the first one's log.
        """
        log_dir.mkdir(parents=True, exist_ok=True)
        note_output(log_dir)
        log_path = log_dir / f"{name}.log"
        n = 1
        while log_path.exists():
            n += 1
            log_path = log_dir / f"{name}-{n}.log"
        log_file = log_path.open("wb")
        full_env = {**os.environ, **(env or {})}
        full_argv = [*prefix, *argv]
        popen = subprocess.Popen(
            full_argv,
            stdin=subprocess.PIPE if pipe_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe_stdout else log_file,
            stderr=log_file,
            env=full_env,
            cwd=cwd,
            start_new_session=True,  # a Ctrl-C in the test runner does not hit it; we stop it
        )
        return cls(name=log_path.stem, argv=full_argv, popen=popen, log_path=log_path, _log_file=log_file)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40, width: int = 400) -> str:
        """The last `lines` lines, each cut to `width` characters (the server logs whole SDPs)."""
        tail = self.log_text().splitlines()[-lines:]
        return "\n".join(line if len(line) <= width else f"{line[:width]}... ({len(line)} chars)" for line in tail)

    def wait_for_log(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """Wait until the log matches the regex `pattern`; raise with the log tail otherwise.

        Raises early if the process exits first. Polls the file (20 ms): this is test glue,
        not production code.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log_text())
            if match:
                return match
            if not self.alive():
                raise ProcessError(
                    f"{self.name} exited with {self.returncode} before printing /{pattern}/; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ProcessError(
                    f"{self.name} did not print /{pattern}/ within {timeout:.0f} s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0, *, term_again_after: float | None = None) -> int:
        """SIGTERM by PID, SIGKILL after `timeout`; returns the exit code. Idempotent.

        `term_again_after`: send a second SIGTERM after that many seconds (livekit-server takes
        the second one as "force": stop without waiting for participants to leave).
        """
        if self.popen.poll() is None:
            deadline = time.monotonic() + timeout
            self.popen.send_signal(signal.SIGTERM)
            try:
                if term_again_after is not None and term_again_after < timeout:
                    try:
                        self.popen.wait(term_again_after)
                    except subprocess.TimeoutExpired:
                        self.popen.send_signal(signal.SIGTERM)
                self.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except OSError:
                    pass
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.close()
        return self.popen.returncode

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited {self.returncode}"
        return f"{self.name} (pid {self.pid}, {state}, log {self.log_path})"
