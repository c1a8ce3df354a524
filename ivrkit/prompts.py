"""Prompts: what a flow file says to play, and the filled-in version an adapter plays.

A prompt is a sequence of parts (text to speak, an audio file, digits spoken one by one, a
pause). Text and digits may hold `{variable}` templates. `fill` fills them from the call's
variables and produces, next to the playable parts, a `log_text` in which every sensitive
variable is masked — the only form that may reach a log or a trace.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PartKind = Literal["text", "audio", "digits", "silence"]
MASK = "****"
_FORMATTER = string.Formatter()


@dataclass(frozen=True, slots=True)
class PromptPart:
    """One piece of a prompt. `value` is text, a file path, digits, or seconds of silence."""

    kind: PartKind
    value: str


def template_names(text: str) -> tuple[str, ...]:
    """The `{names}` used in `text`. Raises ValueError for malformed or non-plain fields.

    Only bare names are allowed (`{balance}`), not `{a.b}` or `{a[0]}`: a flow file is not a
    place to reach into Python objects.
    """
    names: list[str] = []
    for _literal, field_name, format_spec, conversion in _FORMATTER.parse(text):
        if field_name is None:
            continue
        if not field_name.isidentifier():
            raise ValueError(
                f"template field {{{field_name}}} is not a plain variable name; "
                "write {name}, and double braces {{ }} for a literal brace"
            )
        if format_spec or conversion:
            raise ValueError(f"template field {{{field_name}}} may not have a format spec or conversion")
        names.append(field_name)
    return tuple(names)


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt as written in the flow file. `where` is `file:line:col` for error messages."""

    parts: tuple[PromptPart, ...]
    where: str = ""
    #: The log text when every part is text without a template or brace (most prompts): then
    #: `fill` has nothing to fill or mask, and a call plays one on most keys. None otherwise.
    plain: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plain = all(p.kind == "text" and "{" not in p.value and "}" not in p.value for p in self.parts)
        object.__setattr__(self, "plain", " ".join(p.value for p in self.parts if p.value) if plain else None)

    @property
    def variables(self) -> frozenset[str]:
        names: set[str] = set()
        for part in self.parts:
            if part.kind in ("text", "digits"):
                names.update(template_names(part.value))
        return frozenset(names)

    @property
    def is_fixed(self) -> bool:
        """True when the prompt has no templates, so it can be baked to audio once (`ivrkit prompts bake`)."""
        return not self.variables

    @classmethod
    def text(cls, text: str, where: str = "") -> Prompt:
        return cls((PromptPart("text", text),), where)


@dataclass(frozen=True, slots=True)
class FilledPrompt:
    """A prompt with its templates filled in, ready for an adapter to play.

    Adapters log `log_text` (sensitive values masked), never the parts.
    """

    id: int
    parts: tuple[PromptPart, ...]
    log_text: str
    state: str
    barge_in: bool = True
    voice: str | None = None
    language: str | None = None
    hold: bool = False  # hold audio (`hold:` of a dial/navigate): for the caller, not a dialled party

    @property
    def text(self) -> str:
        """Everything speakable as one string (audio and silence parts are skipped)."""
        out: list[str] = []
        for part in self.parts:
            if part.kind == "text":
                out.append(part.value)
            elif part.kind == "digits":
                out.append(" ".join(part.value))
        return " ".join(p for p in out if p)


def _fill_text(text: str, variables: Mapping[str, Any], sensitive: frozenset[str] | set[str], mask: bool) -> str:
    if "{" not in text and "}" not in text:
        return text  # no template field and no escaped brace: nothing to fill (most prompts)
    out: list[str] = []
    for literal, field_name, _spec, _conv in _FORMATTER.parse(text):
        out.append(literal)
        if field_name is None:
            continue
        if mask and field_name in sensitive:
            out.append(MASK)
        else:
            value = variables.get(field_name)
            out.append("" if value is None else str(value))
    return "".join(out)


def fill(
    prompt: Prompt,
    variables: Mapping[str, Any],
    *,
    id: int,
    state: str,
    sensitive: frozenset[str] | set[str] = frozenset(),
    barge_in: bool = True,
    voice: str | None = None,
    language: str | None = None,
) -> FilledPrompt:
    """Fill `prompt`'s templates. A variable with no value fills in empty (the loader warns
    about variables nothing can set)."""
    if prompt.plain is not None:  # the same result as below, without the work
        return FilledPrompt(id, prompt.parts, prompt.plain, state, barge_in, voice, language)
    parts: list[PromptPart] = []
    log: list[str] = []
    for part in prompt.parts:
        if part.kind in ("text", "digits"):
            value = _fill_text(part.value, variables, sensitive, mask=False)
            parts.append(part if value == part.value else PromptPart(part.kind, value))  # frozen: reusable
            masked = _fill_text(part.value, variables, sensitive, mask=True)
            log.append(masked if part.kind == "text" else " ".join(masked) if MASK not in masked else masked)
        else:
            parts.append(part)
            log.append(f"[{part.kind}: {part.value}]")
    return FilledPrompt(
        id=id,
        parts=tuple(parts),
        log_text=" ".join(x for x in log if x),
        state=state,
        barge_in=barge_in,
        voice=voice,
        language=language,
    )
