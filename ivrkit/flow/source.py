"""Reading one YAML file into nodes with positions, and collecting `Issue`s against it.

The loader works on `yaml.compose()` nodes rather than `safe_load()` values because only nodes
keep the source position (`start_mark`) and the key as written: `012:` is the octal number 10
once constructed, but the node still says `012`, so the message can say how to quote it. It
also lets us see duplicate keys, which PyYAML's constructor silently collapses to the last one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import yaml

from ivrkit.errors import FlowLoadError, Issue, Severity

STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
MAX_FILE_BYTES = 5_000_000


@dataclass(frozen=True, slots=True)
class Pos:
    """A 1-based position in a file, with the text of that line for the caret display."""

    file: str
    line: int
    col: int
    source_line: str | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(slots=True)
class Source:
    """One file's text, split into lines once, so every issue can quote its line cheaply."""

    file: str  # as shown to the user
    path: str  # absolute
    text: str
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lines = self.text.splitlines()

    def pos(self, node: yaml.Node | yaml.Mark | None, col_offset: int = 0) -> Pos:
        mark = node.start_mark if isinstance(node, yaml.Node) else node
        if mark is None:
            return Pos(self.file, 1, 1, self.lines[0] if self.lines else None)
        line = mark.line
        source_line = self.lines[line] if 0 <= line < len(self.lines) else None
        return Pos(self.file, line + 1, mark.column + 1 + col_offset, source_line)


class Reporter:
    """Collects every issue; the loader raises once at the end with all of them."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def add(
        self,
        pos: Pos,
        loc: str,
        code: str,
        message: str,
        hint: str | None = None,
        severity: Severity = "error",
    ) -> None:
        self.issues.append(
            Issue(pos.file, pos.line, pos.col, message, code, loc, hint, severity, pos.source_line)
        )

    @property
    def has_errors(self) -> bool:
        return any(i.severity == "error" for i in self.issues)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A click-style suggestion. Only called once a name is known to be wrong (difflib is slow)."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


def loc_join(loc: str, key: object) -> str:
    """`states.main` + `"1"` → `states.main."1"`: keys that are not identifiers are quoted."""
    text = str(key)
    part = text if text.isidentifier() else '"' + text.replace('"', '\\"') + '"'
    return f"{loc}.{part}" if loc else part


def _yaml_hint(problem: str, line: str) -> str | None:
    stripped = line.strip()
    if "alias" in problem or "anchor" in problem:
        if "*" in stripped:
            return 'an unquoted * starts a YAML alias; quote DTMF keys and values: "*": repeat'
        return 'an unquoted & starts a YAML anchor; quote the value'
    if "\t" in line[: len(line) - len(line.lstrip())]:
        return "YAML does not allow tabs for indentation; use spaces"
    if "#" in stripped:
        return 'an unquoted # starts a YAML comment; quote DTMF keys and values: "#": agent'
    if "mapping values are not allowed" in problem:
        return 'a value that contains ": " must be quoted'
    return None


def _comment_col(line: str) -> int | None:
    """1-based column of a `#` that starts a comment inside an open flow collection (`{"1": a, #: b}`),
    where it swallowed the closing brackets; quote-aware. None when the line has no such `#`."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in "\"'" and (i == 0 or line[i - 1] in " \t{[,:"):
            quote = ch
        elif ch == "#" and i > 0 and line[i - 1] in " \t{[,":
            before = line[:i]
            opened = before.count("{") + before.count("[") - before.count("}") - before.count("]")
            return i + 1 if opened > 0 else None
    return None


def _syntax_issue(exc: yaml.MarkedYAMLError, source: Source) -> Issue:
    """A YAML syntax error as an Issue, pointing at the likely cause rather than the symptom.

    PyYAML often notices an unquoted `#` (which silently ate the rest of the line) only at the
    end of the document; we look back from the problem to the context for such a line and
    point there instead.
    """
    mark = exc.problem_mark or exc.context_mark
    pos = source.pos(mark)
    problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
    message = f"YAML syntax error {exc.context}: {exc.problem}" if exc.context and exc.problem else f"YAML syntax error: {problem}"
    hint = _yaml_hint(problem, pos.source_line or "")
    if hint is None:
        last = min(pos.line - 1, len(source.lines) - 1)
        for n in range(last, max(last - 20, -1), -1):
            col = _comment_col(source.lines[n])
            if col is not None:
                pos = Pos(source.file, n + 1, col, source.lines[n])
                hint = _yaml_hint(problem, source.lines[n])
                break
    return Issue(pos.file, pos.line, pos.col, message, "yaml-syntax", "", hint, "error", pos.source_line)


_FAST_LOADER: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def _compose_with(loader_type: type[yaml.SafeLoader], text: str) -> yaml.Node | None:
    loader = loader_type(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def compose(source: Source) -> yaml.Node | None:
    """The document's root node, or FlowLoadError pointing at the YAML syntax problem.

    libyaml (CSafeLoader) composes about ten times faster than pure-Python PyYAML, which matters
    for the 1,000-state target; on any error the file is composed again with the pure-Python
    loader, whose messages (and our hints keyed on them) are the ones users see.
    """
    if _FAST_LOADER is not None:
        try:
            return _compose_with(_FAST_LOADER, source.text)
        except (yaml.YAMLError, RecursionError):
            pass
    try:
        return _compose_with(yaml.SafeLoader, source.text)
    except yaml.MarkedYAMLError as exc:
        raise FlowLoadError([_syntax_issue(exc, source)]) from None
    except yaml.YAMLError as exc:
        raise FlowLoadError([Issue(source.file, 1, 1, f"YAML error: {exc}", "yaml-syntax")]) from None
    except RecursionError:
        raise FlowLoadError([Issue(source.file, 1, 1, "YAML is nested too deeply", "yaml-syntax")]) from None


def mapping_items(
    node: yaml.MappingNode, source: Source, loc: str, report: Reporter
) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    """(key as written, key node, value node) for each entry; reports duplicates and odd keys.

    A duplicate key is reported at the second occurrence, naming the line of the first, and the
    second one is skipped (the opposite of PyYAML, which keeps the last silently).
    """
    seen: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            report.add(source.pos(key_node), loc, "bad-key", "a key must be a plain word, not a list or mapping")
            continue
        if key_node.tag == "tag:yaml.org,2002:merge":
            report.add(source.pos(key_node), loc, "merge-key", "YAML merge keys (<<) are not supported",
                       "repeat the keys, use reusable prompts (@name) or flow-level defaults")
            continue
        key = key_node.value
        if key in seen:
            first = source.pos(seen[key])
            report.add(source.pos(key_node), loc_join(loc, key), "duplicate-key",
                       f"duplicate key '{key}' (first defined on line {first.line}); YAML would silently keep only this one",
                       "remove or rename one of them")
            continue
        seen[key] = key_node
        yield key, key_node, value_node
