"""The worker's flows: found, loaded and checked once at startup, compiled once per process.

Why once: a flow that fails `ivrkit check` must stop the worker before it registers — a caller
must never be the one who finds the typo. And a call must not pay for YAML parsing: each flow
becomes one `FlowMachine` (one transitions machine) shared by every call on it, plus one
`PromptAudio` that keeps its fixed prompts synthesized.

`ivrkit start PATH`: PATH is one flow file, or a folder whose top-level `*.yaml`/`*.yml` files
are each a flow (put include fragments in a sub-folder). Flows are known by their `flow:` name.

With the process executor each job process builds its own `FlowSet` from the same files in its
prewarm step (before it is given a call); with the thread executor all calls share one.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivrkit.errors import FlowError, Issue, IvrkitError, format_issues
from ivrkit.flow.loader import load_flow
from ivrkit.livekit.routing import FlowRouter
from ivrkit.livekit.settings import WorkerOptions
from ivrkit.voice.cache import PromptCache

if TYPE_CHECKING:
    from ivrkit.livekit.prompt_audio import PromptAudio

__all__ = ["BUSY_FLOW", "FlowSet", "FlowSetError", "LoadedFlow", "flow_files", "flow_set", "flow_version", "load_checked"]

#: The flow for callers past `--max-calls` (see `ivrkit.livekit.admission`).
BUSY_FLOW = "busy"

FLOW_SUFFIXES = (".yaml", ".yml")


class FlowSetError(IvrkitError):
    """The worker cannot start with these flows; the message holds every issue, mypy-style.

    Raised by `flow_files` (no such file or folder, no YAML in it) and `load_checked` (errors in
    any file, two files with one flow name; `issues` holds them). The worker prints it and exits
    with `exit_code`. Not a `FlowError`: it spans many files and may carry no issue at all.
    """

    exit_code = 1

    def __init__(self, message: str, issues: tuple[Issue, ...] = ()) -> None:
        super().__init__(message)
        self.issues = issues


def flow_files(path: Path) -> list[Path]:
    """The flow files behind `path` (a file, or a folder's top-level YAML files, sorted)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in FLOW_SUFFIXES)
        if not files:
            raise FlowSetError(f"{path}: no flow files (*.yaml, *.yml) in this folder")
        return files
    raise FlowSetError(f"{path}: no such flow file or folder")


def load_checked(path: Path) -> tuple[dict[str, Any], list[Issue]]:
    """Load and check every flow behind `path`: `(flows by name, warnings)`.

    Raises `FlowSetError` listing all errors of all files (not only the first) when any flow
    fails its checks, two files use one flow name, or a file cannot be read.
    """
    from ivrkit.flow.loader import check_flow

    flows: dict[str, Any] = {}
    errors: list[Issue] = []
    warnings: list[Issue] = []
    origin: dict[str, Path] = {}
    for file in flow_files(path):
        try:
            result = check_flow(file)
        except FlowError as e:  # unreadable file or YAML syntax: one issue
            errors.extend(i for i in e.issues if i.severity == "error")
            continue
        for issue in result.issues:
            (errors if issue.severity == "error" else warnings).append(issue)
        flow = result.flow
        if flow is None or any(i.severity == "error" for i in result.issues):
            continue
        if flow.name in flows:
            errors.append(
                Issue(
                    file=str(file), line=1, col=1, code="duplicate-flow",
                    message=f"flow name '{flow.name}' is also used by {origin[flow.name]}; names must be unique in a folder",
                )
            )
            continue
        flows[flow.name] = flow
        origin[flow.name] = file
    if errors:
        raise FlowSetError(
            format_issues(errors) + f"\nivrkit worker: not starting, {len(errors)} error(s) in {path}", tuple(errors)
        )
    return flows, warnings


def flow_version(files: Iterable[str]) -> str:
    """A short content hash of a flow's files (the flow file, then its includes; read again just
    after loading): which version of a flow a call ran, in its trace and the log.

    Why content, not a path or a time: during a rolling update workers run old and new flows
    side by side, and at 3 am "which flow did this call run?" must be answerable from the trace
    alone; two workers with the same files report the same version wherever the files sit.
    Prompt audio and hook code are not part of it (they ship with the worker's image).
    """
    h = hashlib.sha256()
    for file in files:
        try:
            data = Path(file).read_bytes()
        except OSError:  # removed since it was loaded: the version says so, the call goes on
            data = b"<unreadable>"
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class LoadedFlow:
    flow: Any  # ivrkit.flow.model.Flow
    machine: Any  # ivrkit.machine.FlowMachine, shared by every call on this flow
    audio: PromptAudio  # livekit-agents is imported only when flows are built, not for `--help`
    version: str = ""  # `flow_version` of its files, hashed when the worker loaded them


@dataclass(frozen=True, slots=True)
class FlowSet:
    flows: dict[str, LoadedFlow]
    router: FlowRouter
    busy: LoadedFlow  # for callers past --max-calls: the folder's flow `busy`, else the built-in
    warnings: tuple[Issue, ...] = ()

    @property
    def names(self) -> list[str]:
        return sorted(self.flows)

    @property
    def versions(self) -> str:
        """`name@version,...` of every flow, sorted: what the worker logs when it starts."""
        return ",".join(f"{name}@{self.flows[name].version}" for name in self.names)


def takes_speech(flow: Any) -> bool:
    """Some menu or collect of `flow` takes speech (`input: [.., speech]`), or a `navigate:`
    step waits for the far end's words (`expect: {say: [...]}`): the call needs a recogniser."""
    return any((s.settings.speech and (s.menu is not None or s.collect is not None))
               or (s.navigate is not None and any(step.expect == "words" for step in s.navigate.steps))
               for s in flow.states.values())


def build_flow_set(opts: WorkerOptions) -> FlowSet:
    """Load, check, compile. Raises `FlowSetError` or `RoutingError` with what to fix."""
    from ivrkit.livekit.prompt_audio import PromptAudio, fixed_prompt_parts
    from ivrkit.machine import FlowMachine

    flows, warnings = load_checked(opts.path)
    router = FlowRouter(flows, opts.routes, opts.default_flow)
    cache = PromptCache(opts.prompt_cache) if opts.prompt_cache is not None else None

    def compile(flow: Any) -> LoadedFlow:
        base = Path(flow.file).resolve().parent if getattr(flow, "file", "") else None
        audio = PromptAudio(
            base_dir=base,
            fixed=fixed_prompt_parts(flow),
            cache=cache,
            default_voice=flow.defaults.voice or "en-us",
        )
        return LoadedFlow(flow=flow, machine=FlowMachine(flow), audio=audio, version=flow_version(flow.files))

    speaking = [flow for flow in flows.values() if takes_speech(flow)]
    if speaking:  # said words the offline recogniser cannot pronounce: say so now, not on a call
        from ivrkit.livekit.sphinx import SphinxRecognizer, dictionary_issues

        recognizer = SphinxRecognizer()
        warnings = [*warnings, *(i for flow in speaking for i in dictionary_issues(flow, recognizer))]
    loaded = {name: compile(flow) for name, flow in flows.items()}
    busy = loaded.get(BUSY_FLOW) or compile(load_flow(Path(__file__).resolve().parent.parent / "defaults" / "busy.yaml"))
    return FlowSet(flows=loaded, router=router, busy=busy, warnings=tuple(warnings))


_LOCK = threading.Lock()
_SETS: dict[WorkerOptions, FlowSet] = {}


def flow_set(opts: WorkerOptions) -> FlowSet:
    """This process's `FlowSet` for `opts`, built on first use (thread-safe)."""
    with _LOCK:
        fs = _SETS.get(opts)
        if fs is None:
            fs = _SETS[opts] = build_flow_set(opts)
        return fs


def install(opts: WorkerOptions, fs: FlowSet) -> None:
    """Make `fs` this process's set for `opts` (the startup check built it already)."""
    with _LOCK:
        _SETS[opts] = fs

