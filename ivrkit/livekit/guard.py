"""`ivrkit start`'s guard: when the worker process dies, its callers are hung up at once.

Why: a worker killed mid-call (SIGKILL, the OOM killer, a native crash) leaves its callers in
dead silence. The server drops the dead agent only after ~22 s, nobody re-serves the call when
self-hosted, and a phone keeps the line open until it gives up (41 s measured). The worker
cannot help itself once dead, so `ivrkit start` runs it as a child of a small guard process:

- each call registers its room in a folder while it runs (`CallRegistry`, one file per room,
  written by the job, removed when the call ends, whatever the executor);
- when the worker exits without being asked to, the guard deletes every room still registered
  (deleting a room hangs up a SIP caller and disconnects everyone else), then starts a new
  worker; a worker that keeps dying young, or that exits on its own with a code (bad settings,
  server unreachable), ends the guard with that code instead of looping;
- SIGTERM / SIGINT go to the worker, which drains its calls as usual (past `--drain-timeout` it
  stops them: ivrkit.livekit.stopping); the guard then exits with the worker's code. A second
  signal is passed on too: livekit-agents then exits at once, and the guard hangs up the calls
  it left. The worker runs in a session of its own, so a terminal's Ctrl-C reaches it once,
  through the guard, and it dies with the guard (PR_SET_PDEATHSIG), never orphaned. A closed
  terminal (SIGHUP to the guard) stops it as SIGTERM does.

Several workers (`--workers N`): one interpreter tops out near 1.2 cores (bench row 6 and 13),
so a host uses every core only with several worker processes. The guard starts N, each
registered with LiveKit on its own and reporting its own load, so LiveKit's dispatcher spreads
the calls; each has its own calls folder, so one's death hangs up only its calls, and it alone is
restarted. SIGTERM drains them all; the guard exits when the last has.

Rooms left registered by a guard that died itself (the whole container was killed) are hung up
by the next guard at start, when it is given the same folder (`--guard-dir`, a volume).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import quote, unquote

from ivrkit.livekit.dev_child import start_worker
from ivrkit.livekit.settings import CALLS_PER_CORE, DEFAULT_HEALTH_PORT, LiveKitCredentials, WorkerOptions

__all__ = ["CallRegistry", "child_folder", "child_options", "guard", "hang_up"]

logger = logging.getLogger("ivrkit.livekit")

#: A worker that dies this soon after it started, this many times in a row, is not restarted.
YOUNG_SECONDS = 30.0
MAX_YOUNG_DEATHS = 3
#: Each room deletion waits at most this long for the server.
DELETE_LIMIT = 5.0


class CallRegistry:
    """The rooms a worker is serving, as files in one folder (each survives the worker's death).
    One file per job: two jobs in one room (a second dispatch) each keep it registered until
    their own end.

    >>> reg = CallRegistry(Path(tempfile.mkdtemp()))
    >>> reg.add("call-+15550100", "AJ_1"); reg.rooms()
    ['call-+15550100']
    >>> reg.remove("call-+15550100", "AJ_1"); reg.rooms()
    []
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _file(self, room: str, job: str) -> Path:
        # quote() leaves no "+" in either part, so the room is what comes before the first one
        return self.folder / (quote(room, safe="") + (f"+{quote(job, safe='')}" if job else "") + ".call")

    def add(self, room: str, job: str = "") -> None:
        self._file(room, job).write_text(f"{os.getpid()}\n")

    def remove(self, room: str, job: str = "") -> None:
        self._file(room, job).unlink(missing_ok=True)

    def forget(self, room: str) -> None:
        """The room is gone (hung up): drop every job's registration of it."""
        for path in self.folder.glob("*.call"):
            if self._room(path) == room:
                path.unlink(missing_ok=True)

    def rooms(self) -> list[str]:
        return sorted({self._room(p) for p in self.folder.glob("*.call")})

    @staticmethod
    def _room(path: Path) -> str:
        return unquote(path.name[: -len(".call")].split("+", 1)[0])


async def _delete_rooms(creds: LiveKitCredentials, rooms: list[str]) -> list[str]:
    from livekit import api

    done: list[str] = []
    async with api.LiveKitAPI(creds.url, creds.api_key, creds.api_secret) as lk:
        for room in rooms:
            try:
                await asyncio.wait_for(lk.room.delete_room(api.DeleteRoomRequest(room=room)), DELETE_LIMIT)
                done.append(room)
            except api.TwirpError as e:
                if e.code == api.TwirpErrorCode.NOT_FOUND:
                    done.append(room)  # already gone: the caller left
                else:
                    logger.error("guard: could not hang up room '%s': %s", room, e.message)
            except Exception as e:
                logger.error("guard: could not hang up room '%s' (%s: %s)", room, type(e).__name__, e)
    return done


def hang_up(registry: CallRegistry, creds: LiveKitCredentials) -> list[str]:
    """Delete every registered room (its caller is hung up) and forget it; returns the rooms.
    A room the server could not be asked about stays registered for the next sweep."""
    rooms = registry.rooms()
    if not rooms:
        return []
    done = asyncio.run(_delete_rooms(creds, rooms))
    for room in done:
        registry.forget(room)
    return done


def _say(line: str) -> None:
    try:
        print(f"ivrkit guard: {line}", flush=True)
    except OSError:  # its terminal is gone (SIGHUP): the guard's work goes on without a word
        pass


@dataclass
class _Child:
    """One worker of the guard: its process, options and calls folder, and its early deaths."""

    number: int
    opts: WorkerOptions
    registry: CallRegistry
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    young_deaths: int = 0

    def start(self) -> None:
        self.process = start_worker(self.opts)
        self.started = time.monotonic()
        _say(f"worker{self._n} pid={self.process.pid} started (calls registered in {self.registry.folder})")

    @property
    def _n(self) -> str:
        return f" {self.number}" if self.opts.workers > 1 else ""  # one worker: no number


def guard(opts: WorkerOptions, creds: LiveKitCredentials) -> int:
    """Run `opts.workers` workers as children until stopped; hang up a dead worker's calls and
    start a new one in its place (see the module docstring). Returns the exit code."""
    folder = opts.guard_dir or Path(tempfile.mkdtemp(prefix="ivrkit-calls-"))
    children = [_Child(i, child_options(opts, folder, i), CallRegistry(child_folder(opts, folder, i)))
                for i in range(opts.workers)]
    left = hang_up(CallRegistry(folder), creds) + [room for c in children if c.opts.guard_dir != folder
                                                  for room in hang_up(c.registry, creds)]
    if left:
        _say(f"hung up {len(left)} call(s) left by an earlier worker: {', '.join(left)}")
    stopping = False
    for c in children:
        c.start()

    def forward(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for c in children:
            if c.process is not None and c.process.poll() is None:
                c.process.send_signal(sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        # The terminal closed. The worker, in its own session, does not hear it, and the guard
        # would die at once (the default) and leave it: on Linux it gets SIGTERM from the kernel
        # (PR_SET_PDEATHSIG) but no guard hangs up what it leaves; elsewhere it is orphaned.
        # Once stopping, a closed terminal changes nothing (a second SIGTERM would cut the
        # drain short); under `nohup` (SIGHUP ignored) it stays ignored.
        signal.signal(signal.SIGHUP, lambda sig, frame: None if stopping else forward(signal.SIGTERM, frame))
    codes: dict[int, int] = {}
    while True:
        pid, status = os.wait()
        child = next((c for c in children if c.process is not None and c.process.pid == pid), None)
        if child is None or child.process is None:
            continue  # not a worker (cannot happen: the guard starts nothing else)
        child.process.returncode = code = os.waitstatus_to_exitcode(status)
        if stopping:
            codes[child.number] = code if code >= 0 else 128 - code
            # a drained worker leaves none; one forced out (a second signal) leaves its callers
            hung = hang_up(child.registry, creds)
            if hung:
                _say(f"worker{child._n} pid={pid} stopped with {len(hung)} call(s) in progress; hung them up: "
                     f"{', '.join(hung)}")
            if len(codes) == len(children):
                return max(codes.values())
            continue
        if code in (1, 2):  # the worker gave up on its own (settings, flows, server): it said why
            for c in children:
                if c is not child and c.process is not None and c.process.poll() is None:
                    c.process.terminate()  # its siblings would give up on the same grounds
            for c in children:
                if c.process is not None:
                    c.process.wait()
                hang_up(c.registry, creds)
            return code
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        hung = hang_up(child.registry, creds)
        _say(f"worker{child._n} pid={pid} {how}; hung up {len(hung)} call(s) it was serving"
             + (f": {', '.join(hung)}" if hung else ""))
        child.young_deaths = child.young_deaths + 1 if time.monotonic() - child.started < YOUNG_SECONDS else 1
        if child.young_deaths >= MAX_YOUNG_DEATHS:
            _say(f"a worker died {child.young_deaths} times within {YOUNG_SECONDS:g} s of starting; giving up")
            forward(signal.SIGTERM, None)
            for c in children:
                if c.process is not None:
                    c.process.wait()
                hang_up(c.registry, creds)
            return code if code > 0 else 1
        time.sleep(1.0)
        if stopping:
            codes[child.number] = 0
            if len(codes) == len(children):
                return max(codes.values())
            continue
        child.start()


def child_folder(opts: WorkerOptions, folder: Path, number: int) -> Path:
    """Worker `number`'s calls folder: the guard's own with one worker, else a subfolder each,
    so a dead worker's calls are told from its siblings'."""
    return folder if opts.workers == 1 else folder / f"worker-{number}"


def child_options(opts: WorkerOptions, folder: Path, number: int) -> WorkerOptions:
    """Worker `number`'s options. With several workers each takes its share of the host's
    default capacity (unless `--max-calls` says), and its own health and metrics ports: the
    given port plus its number (port 0 stays 0: any free port)."""
    from dataclasses import replace

    if opts.workers == 1:
        return replace(opts, guard_dir=folder)

    def port(given: int | None) -> int | None:
        return given + number if given else given

    max_calls = opts.max_calls or math.ceil(CALLS_PER_CORE * (os.cpu_count() or 1) / opts.workers)
    return replace(opts, guard_dir=child_folder(opts, folder, number), max_calls=max_calls,
                   http_port=port(opts.http_port if opts.http_port is not None else DEFAULT_HEALTH_PORT),
                   metrics_port=port(opts.metrics_port))


