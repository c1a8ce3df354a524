"""Every error ivrkit raises, and the `Issue` record that flow checks report.

The tree (a dotted name is a class kept in an adapter, by its module under `ivrkit.`)::

    IvrkitError
    ├── FlowError                         a flow file cannot be used
    │   ├── FlowLoadError                 unreadable file, YAML syntax, include cycle (one issue)
    │   └── FlowValidationError           the file parsed, but checks found problems (all issues)
    ├── ConditionSyntaxError              a goto arm's `if:` does not parse (also a ValueError)
    ├── HookImportError                   a hook's `module:function` cannot be imported
    ├── CallError                         the call runtime was misused (e.g. started twice)
    ├── ChannelError                      an adapter could not do what the call asked (a transfer…)
    ├── HookError                         a flow hook raised, returned garbage or timed out
    ├── HookTimeout                       work under `hooks.run_limited` ran past its limit
    ├── SpeechError                       the offline voice could not be loaded or failed
    ├── AudioFileError                    an audio file cannot be read or written
    ├── CoverageDataError                 a flow coverage file is unreadable or lacks the flow
    ├── ReplayError                       a recorded call cannot be replayed (unreadable, masked keys)
    ├── GraphvizError                     Graphviz's `dot` failed to draw a flow (ivrkit graph)
    │   └── GraphvizMissing               `dot` is not installed (the message says how to get it)
    ├── livekit.settings.SettingsError    a worker setting is missing or malformed (exit 2)
    ├── livekit.routing.RoutingError      a route or the default flow cannot work (exit 2)
    ├── livekit.flows.FlowSetError        the worker's flow files cannot all be used (exit 1)
    ├── livekit.dtmf.DtmfRejected         an incoming key event is not RFC 4733 (also a ValueError)
    ├── livekit.local_server.LocalServerError  `ivrkit dev --local-server` cannot start its server (also a RuntimeError)
    ├── console.script.KeyScriptError     a console key script item cannot be understood
    ├── console.audio.AudioUnavailable    no sound card output (the console goes on with text)
    ├── dialpad.bundle.BundleError        the page's JS bundle is missing and cannot be built (also a RuntimeError)
    ├── dialpad.server.DevServerError     the dial pad server cannot start (also a RuntimeError)
    ├── dialpad.say.SayRefused            the Say box's text cannot be said (HTTP 400/413; also a ValueError)
    └── dialpad.picture.FlowNotFound      the dial pad has no flow of the name asked (HTTP 404)

Where each class lives: an error the engine raises is defined here, so it stays put when the
module that raises it moves, and this module imports only the stdlib. An error only an adapter
(LiveKit worker, console, dial pad) raises is defined next to the code that raises it, so the
engine never names an adapter's concepts; it still subclasses a class from here and is drawn
above. `tests/test_errors.py` imports every module and fails when a class is missing from the
tree, drawn under the wrong parent, or drawn but gone.

Not in the tree, on purpose: the stdlib's `ValueError`/`TypeError` for a programming mistake
in an argument (as the stdlib itself does), `AssertionError` from `ivrkit.testing` (what pytest
reports), and private signals that never leave the function that catches them
(`flow.conditions._EvalError`). The classes that predate the tree keep their old stdlib base too,
so an `except ValueError` written against them still works.

Flow errors carry `Issue` records rather than one string so that `ivrkit check` can print them
mypy-style for humans and as JSON for editors, from the same data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found in a flow file, pointing at the exact source position.

    `line` and `col` are 1-based, as editors count. `loc` is the path inside the document
    (`states.main.menu.options."1"`), `code` a stable identifier (`unknown-state`) that tools
    and docs can key on, `hint` an optional "did you mean" or "how to fix" note.
    """

    file: str
    line: int
    col: int
    message: str
    code: str
    loc: str = ""
    hint: str | None = None
    severity: Severity = "error"
    source_line: str | None = field(default=None, compare=False)

    def format(self) -> str:
        """mypy-style text: `file:line:col: error: message (loc)  [code]` plus caret and note."""
        where = f" ({self.loc})" if self.loc else ""
        out = [f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}{where}  [{self.code}]"]
        if self.source_line is not None:
            out.append("    " + self.source_line.rstrip("\n"))
            out.append("    " + " " * max(self.col - 1, 0) + "^")
        if self.hint:
            out.append(f"  note: {self.hint}")
        return "\n".join(out)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("source_line")
        return data

    def __str__(self) -> str:
        return self.format()


def format_issues(issues: list[Issue] | tuple[Issue, ...]) -> str:
    """All issues as text, followed by one summary line per file (`flows/a.yaml: 2 errors`)."""
    lines = [issue.format() for issue in issues]
    counts: dict[str, list[int]] = {}
    for issue in issues:
        errors_warnings = counts.setdefault(issue.file, [0, 0])
        errors_warnings[0 if issue.severity == "error" else 1] += 1
    for file, (n_err, n_warn) in counts.items():
        parts = []
        if n_err:
            parts.append(f"{n_err} error{'s' if n_err != 1 else ''}")
        if n_warn:
            parts.append(f"{n_warn} warning{'s' if n_warn != 1 else ''}")
        lines.append(f"{file}: {', '.join(parts)}")
    return "\n".join(lines)


def issues_to_json(issues: list[Issue] | tuple[Issue, ...]) -> str:
    return json.dumps([issue.to_dict() for issue in issues], indent=2)


class IvrkitError(Exception):
    """Root of every error ivrkit raises on purpose: `except IvrkitError` catches them all.

    Pickles (and copies) by state, not by calling `__init__` again, so subclasses with their own
    constructor (`FlowError`'s issues, `HookError`'s keywords) come back whole, attributes and
    message included (e.g. raised in a process pool, or `copy.copy`-ed).
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args), self.__dict__)


def _rebuild(cls: type[IvrkitError], args: tuple[Any, ...]) -> IvrkitError:
    """Unpickle an `IvrkitError`: `args` without `__init__`; pickle then restores `__dict__`."""
    return cls.__new__(cls, *args)


class FlowError(IvrkitError):
    """A flow file cannot be used. Always carries at least one `Issue`."""

    def __init__(self, issues: list[Issue] | tuple[Issue, ...]) -> None:
        self.issues: tuple[Issue, ...] = tuple(issues)
        super().__init__(format_issues(self.issues))

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.issues)} issue(s))"


class FlowLoadError(FlowError):
    """The file could not be read or parsed as YAML (or an include could not be).

    Raised by `load_flow`/`load_flow_text` with the one issue that stopped loading.
    """


class FlowValidationError(FlowError):
    """The file parsed, but the checks found errors; `issues` holds all of them, warnings too.

    Raised by `load_flow`/`load_flow_text`; `check_flow` returns the same issues instead.
    """


class ConditionSyntaxError(IvrkitError, ValueError):
    """A condition that does not parse or uses something outside the whitelist.

    Raised by `Condition.parse` (a `goto` arm's `if:`); the flow builder turns it into a
    `bad-condition` issue. `col` is the 1-based column inside the condition text, so the loader
    can point the caret at the exact character in the flow file. Also a `ValueError`, as it was
    before it joined this tree.
    """

    def __init__(self, message: str, col: int) -> None:
        self.col = col
        super().__init__(f"column {col}: {message}")


class CallError(IvrkitError):
    """The call runtime was used in a way it does not support.

    Raised by `Call` (run twice), `Channel` (connected to a second call, or emitting before
    one), `FlowMachine` (a start state or edge the flow lacks) and `DigitCollector` (impossible
    limits): a bug in the code driving ivrkit, not something a caller did.
    """


class ChannelError(IvrkitError):
    """An adapter could not perform an action (transfer, dial, send DTMF).

    Adapters translate their transport's exceptions into this at the edge, so the engine can
    route the caller down the flow's error path without knowing LiveKit or SIP.
    """


class HookError(IvrkitError):
    """A flow hook failed. Names the hook, the state and where the state is defined.

    Raised at call time when a `run:`/`validate:`/`call_start`/`call_end` hook raises, returns
    something the flow cannot use, runs past its limit (a `HookTimeout` turned into this once
    the hook and state are known), or could not be resolved when the flow was compiled. The call
    then takes the flow's error path. `where` is the flow file's reference to the hook;
    `raised_at`, for a hook that raised, the Python `file:line (function)` of the raise (and of
    the hook's own frame, when the raise was deeper, in a library it called).
    """

    def __init__(self, message: str, *, hook: str, state: str, where: str, raised_at: str = "") -> None:
        self.hook = hook
        self.state = state
        self.where = where
        self.raised_at = raised_at
        at = f" (raised at {raised_at})" if raised_at else ""
        super().__init__(f"{where}: hook {hook} in state '{state}': {message}{at}")


class HookImportError(IvrkitError):
    """A hook reference could not be turned into a callable; the message says why and what to do.

    Raised at load time by `resolve_hook` (module missing or raising on import, no such
    attribute, not callable, or a module name already imported from another folder). `ivrkit
    check` reports it as an issue; the machine logs it and fails that hook at call time.
    """


class HookTimeout(IvrkitError):
    """Work run under `ivrkit.hooks.run_limited` went past its time limit (on the call's clock).

    `run_limited` knows no hook or state, so this is not a `HookError`: the call runtime turns
    it into one for a flow hook, and logs it for an observer or a channel's end-of-call action.
    """


class SpeechError(IvrkitError):
    """The offline voice (eSpeak NG) could not be loaded or failed to synthesise.

    Raised by `ivrkit.speech.EspeakVoice` (library missing, unknown voice, synthesis failed);
    the console says so and goes on with printed prompts; the LiveKit TTS adapter hands it to
    livekit-agents as a non-retryable `APIError`.
    """


class AudioFileError(IvrkitError):
    """An audio file could not be read or written. The message names the file and the fix.

    Raised by `ivrkit.audio` (`read_wav`, `write_wav`) for a missing, unreadable or non-PCM
    prompt file, and by the prompt cache when its folder cannot be created.
    """


class GraphvizError(IvrkitError):
    """Graphviz's `dot` ran and failed, or took too long, drawing a flow (`ivrkit graph`)."""


class GraphvizMissing(GraphvizError):
    """Graphviz's `dot` is not on PATH; the message says how to install it (SVG/PNG need it,
    Mermaid and DOT text do not)."""


class ReplayError(IvrkitError):
    """A recorded call cannot be replayed: its trace is unreadable or not a whole call, or it
    holds masked keys of sensitive input and their digits were not given; the message says
    which state and how to give them (`--set NAME=DIGITS`, `--keys-for STATE=DIGITS`)."""


class CoverageDataError(IvrkitError):
    """A flow coverage file (`pytest --ivr-cov`) cannot be read, is not ivrkit's, or has no
    entry for the flow asked about; the message names the file and what to do."""
