'''Loading flow files: YAML text → the immutable, checked `Flow` model.

Public API::

    load_flow(path, *, check_hooks=True) -> Flow                 # raises FlowError; logs warnings
    check_flow(path, *, check_hooks=True) -> CheckResult         # never raises FlowError
    load_flow_text(text, filename="<string>", *, check_hooks=True) -> Flow
    check_flow_text(text, filename="<string>", *, check_hooks=True) -> CheckResult

Every problem is collected before anything is raised: `FlowLoadError` when a file cannot be
read, is not YAML, or an include is missing or cyclic (one issue); `FlowValidationError` with
*all* issues (warnings too) when the checks find errors. Each `Issue` names the file, 1-based
line and column, the path inside the document, a stable code, and a hint.

The flow language itself — top-level keys, settings, state actions, DTMF keys, prompts,
variables, conditions, and every check with its code — is documented once, in docs/flows.md;
`ivrkit schema` prints the keys as JSON Schema (from `spec.py`, which the builder reads too).
'''

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from ivrkit.errors import FlowLoadError, FlowValidationError, Issue
from ivrkit.flow.build import Builder
from ivrkit.flow.build_context import Document
from ivrkit.flow.model import Flow
from ivrkit.flow.source import MAX_FILE_BYTES, Pos, Reporter, Source, compose
from ivrkit.flow.validate import validate

__all__ = ["CheckResult", "check_flow", "check_flow_text", "load_flow", "load_flow_text"]

logger = logging.getLogger("ivrkit.flow")
MAX_INCLUDES = 200


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of checking a flow: the Flow when there are no errors, and every issue."""

    flow: Flow | None
    issues: tuple[Issue, ...]

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity == "warning")

    @property
    def ok(self) -> bool:
        return self.flow is not None


def _load_error(pos: Pos, code: str, message: str, hint: str | None = None) -> FlowLoadError:
    return FlowLoadError([Issue(pos.file, pos.line, pos.col, message, code, "", hint, "error", pos.source_line)])


def _read(path: str, display: str, at: Pos | None) -> Source:
    where = at or Pos(display, 1, 1)
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise _load_error(where, "file-too-large", f"'{display}' is {size} bytes; flow files are limited to {MAX_FILE_BYTES}")
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        code, what = ("include-missing", "included file") if at else ("file-not-found", "flow file")
        raise _load_error(where, code, f"{what} '{display}' does not exist", "include paths are relative to the including file" if at else None) from None
    except IsADirectoryError:
        raise _load_error(where, "file-unreadable", f"'{display}' is a directory, not a flow file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise _load_error(where, "file-unreadable", f"cannot read '{display}': {getattr(exc, 'strerror', None) or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _load_error(Pos(display, 1, 1), "file-encoding", f"'{display}' is not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    return Source(display, os.path.abspath(path), text)


def _include_entries(doc: Document) -> list[tuple[str, yaml.Node]]:
    """The `include:` entries of a document, as (text, node). Type problems are load errors."""
    root = doc.root
    if not isinstance(root, yaml.MappingNode):
        return []
    for key_node, value in root.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "include":
            items = value.value if isinstance(value, yaml.SequenceNode) else [] if value.tag.endswith(":null") else [value]
            out: list[tuple[str, yaml.Node]] = []
            for item in items:
                if not isinstance(item, yaml.ScalarNode) or item.tag.endswith(":null") or not str(item.value).strip():
                    raise _load_error(doc.source.pos(item), "bad-include", "an include entry must be a file name", "include: [common.yaml]")
                out.append((str(item.value), item))
            return out
    return []


def _load_documents(main: Source) -> list[Document]:
    """The main document and every include, depth first, each file once; cycles are errors."""
    docs: list[Document] = []
    visited: set[str] = set()
    chain: list[str] = []

    def visit(source: Source, is_main: bool) -> None:
        doc = Document(source, compose(source), is_main)
        docs.append(doc)
        visited.add(source.path)
        chain.append(source.path)
        for text, node in _include_entries(doc):
            path = os.path.normpath(os.path.join(os.path.dirname(source.path), os.path.expanduser(text)))
            display = os.path.normpath(os.path.join(os.path.dirname(source.file), text)) if not source.file.startswith("<") else path
            at = source.pos(node)
            if path in chain:
                cycle = " -> ".join(os.path.basename(p) for p in [*chain[chain.index(path):], path])
                raise _load_error(at, "include-cycle", f"include cycle: {cycle}", "remove one of the includes")
            if path in visited:
                continue
            if len(docs) >= MAX_INCLUDES:
                raise _load_error(at, "too-many-includes", f"more than {MAX_INCLUDES} included files")
            visit(_read(path, display, at), False)
        chain.pop()

    visit(main, True)
    return docs


def _run(source: Source, check_hooks: bool) -> CheckResult:
    try:
        docs = _load_documents(source)
    except FlowLoadError as exc:
        return CheckResult(None, exc.issues)
    report = Reporter()
    builder = Builder(docs, report)
    flow = builder.build()
    validate(flow, builder.info, report, check_hooks=check_hooks)
    order = {doc.source.file: i for i, doc in enumerate(docs)}
    issues = tuple(sorted(report.issues, key=lambda i: (order.get(i.file, len(order)), i.line, i.col)))
    return CheckResult(None if report.has_errors else flow, issues)


def _raise_or_return(result: CheckResult) -> Flow:
    if result.flow is None:
        if result.issues and result.issues[0].code in _LOAD_CODES and len(result.issues) == 1:
            raise FlowLoadError(result.issues)
        raise FlowValidationError(result.issues)
    for issue in result.warnings:
        logger.warning("%s", issue.format())
    return result.flow


_LOAD_CODES = frozenset({
    "file-not-found", "file-unreadable", "file-too-large", "file-encoding", "yaml-syntax",
    "include-missing", "include-cycle", "bad-include", "too-many-includes",
})


def check_flow(path: str | os.PathLike[str], *, check_hooks: bool = True) -> CheckResult:
    """Check a flow file and its includes; every problem is in `issues`, nothing is raised."""
    display = os.fspath(path)
    try:
        source = _read(display, display, None)
    except FlowLoadError as exc:
        return CheckResult(None, exc.issues)
    return _run(source, check_hooks)


def load_flow(path: str | os.PathLike[str], *, check_hooks: bool = True) -> Flow:
    """The checked Flow. Raises FlowLoadError / FlowValidationError; logs warnings."""
    return _raise_or_return(check_flow(path, check_hooks=check_hooks))


def check_flow_text(text: str, filename: str = "<string>", *, check_hooks: bool = True) -> CheckResult:
    """Like check_flow for text in memory; relative paths resolve against `filename`'s folder
    (the current directory for "<string>")."""
    path = os.path.abspath(filename) if not filename.startswith("<") else str(Path.cwd() / filename)
    return _run(Source(filename, path, text), check_hooks)


def load_flow_text(text: str, filename: str = "<string>", *, check_hooks: bool = True) -> Flow:
    """Like load_flow for text in memory (tests, generated flows)."""
    return _raise_or_return(check_flow_text(text, filename, check_hooks=check_hooks))
