"""`ivrkit dev`: run the worker in a child process and restart it when flows or hooks change.

Why a child process: hook modules are Python, and the only reliable way to load a changed
module (and everything it imported) is a fresh interpreter; livekit-agents 1.8.9 no longer
reloads in-process either. Watching uses `watchfiles` (a livekit-agents dependency).

What is watched: the flow file or folder, every file a flow includes, and the folders of the
hook modules the flows name — worked out again after each restart, so an edit that adds an
include or a hook folder elsewhere is watched from then on. Only `.yaml`/`.yml`/`.py`/`.wav` changes count. Before a restart
the changed flows are checked in a fresh interpreter (so a changed hook module is checked too);
when that fails, the errors are printed and the running worker is kept — a typo does not take
the dev line down. Calls in progress end at a restart and at Ctrl-C (dev mode does not drain):
each is stopped at once, hung up, its trace saying the worker stopped (ivrkit.livekit.stopping).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from ivrkit.livekit.dev_child import child_environment, options_from_environment, start_worker
from ivrkit.livekit.flows import FlowSet, FlowSetError, build_flow_set
from ivrkit.livekit.settings import WorkerOptions

__all__ = ["supervise", "watched_paths"]

WATCHED_SUFFIXES = (".yaml", ".yml", ".py", ".wav")


def watched_paths(opts: WorkerOptions, fs: FlowSet) -> list[Path]:
    """Folders to watch: the flows', their includes', and their hook modules'."""
    from ivrkit.livekit.prompt_audio import _walk_hooks

    paths: set[Path] = {(opts.path if opts.path.is_dir() else opts.path.parent).resolve()}
    for loaded in fs.flows.values():
        for file in getattr(loaded.flow, "files", ()) or ():
            paths.add(Path(file).resolve().parent)
        for module in {ref.module for ref in _walk_hooks(loaded.flow)}:
            mod = sys.modules.get(module)
            origin = getattr(mod, "__file__", None)
            if origin:
                paths.add(Path(origin).resolve().parent)
    # A folder inside another watched folder is covered (watching is recursive).
    return sorted(p for p in paths if not any(q != p and q in p.parents for q in paths))


def _relevant(change: Any, path: str) -> bool:
    return path.endswith(WATCHED_SUFFIXES) and "__pycache__" not in path


def _start_child(opts: WorkerOptions) -> subprocess.Popen[bytes]:
    return start_worker(opts)  # its own session: Ctrl-C reaches it once, as our SIGTERM


#: Workers already sent their SIGTERM: a second one (Ctrl-C while a restart waits for the old
#: worker) makes livekit-agents exit at once, its calls neither hung up nor traced.
_terminated: set[int] = set()


def _stop_child(child: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if child.poll() is None:
        if child.pid not in _terminated:
            _terminated.add(child.pid)
            child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _check_fresh(opts: WorkerOptions) -> tuple[bool, str, list[Path]]:
    """Check the flows in a fresh interpreter (changed hook modules included); on success also
    the folders to watch now (an edit may add an include or a hook module elsewhere)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ivrkit.livekit.reload"],
        env=child_environment(opts), capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        return False, (proc.stdout + proc.stderr).strip(), []
    lines = proc.stdout.strip().splitlines()
    return True, "", [Path(p) for p in json.loads(lines[-1])] if lines else []


def supervise(opts: WorkerOptions, fs: FlowSet) -> None:
    """Run the worker in a child and restart it on relevant changes, until SIGINT/SIGTERM."""
    import watchfiles

    hangup = getattr(signal, "SIGHUP", None)
    if hangup is not None and signal.getsignal(hangup) is signal.SIG_IGN:
        hangup = None  # under `nohup`: a closed terminal stays ignored

    def _terminate(sig: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    if hangup is not None:  # the terminal closed: the worker, in its own session, would not
        signal.signal(hangup, _terminate)  # hear it, and off Linux would be orphaned
    paths = watched_paths(opts, fs)
    child = _start_child(opts)
    try:
        while True:
            announced = False
            for changes in watchfiles.watch(
                *paths, watch_filter=_relevant, raise_interrupt=True, rust_timeout=1000, yield_on_timeout=True
            ):
                if not announced:  # the watcher is running now: an edit from here on is seen
                    print(f"ivrkit dev: watching {', '.join(str(p) for p in paths)} for changes", flush=True)
                    announced = True
                if not changes:  # a quiet second: is the worker still there?
                    code = child.poll()
                    if code is not None:
                        # It gave up (server unreachable, bad keys) or crashed: say so and end
                        # with its code, as `ivrkit start` would — never sit there silently.
                        print(f"ivrkit dev: the worker exited with code {code} (see above); stopping", flush=True)
                        raise SystemExit(code)
                    continue
                names = ", ".join(sorted({Path(p).name for _, p in changes}))
                print(f"ivrkit dev: changed {names}; checking flows", flush=True)
                ok, output, now_watched = _check_fresh(opts)
                if not ok:
                    print(output, file=sys.stderr, flush=True)
                    print("ivrkit dev: not restarting: the flows above have errors; the running worker keeps serving",
                          flush=True)
                    continue
                print("ivrkit dev: restarting the worker", flush=True)
                _stop_child(child)
                child = _start_child(opts)
                if now_watched and now_watched != paths:
                    paths = now_watched
                    break  # watch the new set of folders
    except KeyboardInterrupt:
        pass
    finally:
        if hangup is not None:  # stopping now: a closed terminal must not count as a second
            signal.signal(hangup, signal.SIG_IGN)  # signal, which kills the worker at once
        try:
            _stop_child(child)  # the worker stops its calls (hung up, traced) and exits
        except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM while it does: do not wait
            child.kill()
            child.wait()


def _check_main() -> int:
    opts = options_from_environment()
    if opts is None:
        print("ivrkit.livekit.reload: run by `ivrkit dev` only", file=sys.stderr)
        return 2
    try:
        fs = build_flow_set(opts)
    except FlowSetError as e:
        print(e, file=sys.stderr)
        return 1
    except Exception as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps([str(p) for p in watched_paths(opts, fs)]))
    return 0


if __name__ == "__main__":
    sys.exit(_check_main())
