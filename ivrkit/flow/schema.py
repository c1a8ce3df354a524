"""A JSON Schema (draft 2020-12) for flow files, generated from `ivrkit.flow.spec`.

Editors (VS Code's YAML extension, JetBrains) use it to complete keys and flag typos as you
type. It is generated from the same key table the loader checks against, so the two cannot
disagree about which keys exist. The schema is looser than the loader in places JSON Schema
cannot express (state names that must exist, loops, hooks that must import): `ivrkit check`
remains the authority.
"""

from __future__ import annotations

import json
from typing import Any

from ivrkit.flow.model import DTMF_MODES
from ivrkit.flow.spec import DTMF_KEYS, SECTIONS, ValueType

SCHEMA_ID = "https://ivrkit.dev/schema/flow.json"
_DTMF_PATTERN = "^[0-9*#A-Da-d]$"
_DURATION_PATTERN = r"^\s*(\d+(\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$"
_INPUT = {"type": "string", "pattern": "^(dtmf|speech)$"}
_HOOK_PATTERN = r"^\s*[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*\s*$"

# Which section describes the mapping form of each value type.
_OBJECT_SECTIONS: dict[str, str] = {
    "menu": "menu", "collect": "collect", "settings": "defaults", "hooks": "hooks",
    "transfer": "transfer", "send_dtmf": "send_dtmf", "dial": "dial", "amd": "amd",
    "navigate": "navigate", "nav_step": "nav_step", "expect": "expect",
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


def _object(section: str) -> dict[str, Any]:
    keys = SECTIONS[section]
    out: dict[str, Any] = {
        "type": "object",
        "properties": {k.name: {**_value(k.type), "description": k.doc} for k in keys},
        "additionalProperties": False,
    }
    required = [k.name for k in keys if k.required]
    if required:
        out["required"] = required
    return out


def _value(kind: ValueType) -> dict[str, Any]:
    simple: dict[str, dict[str, Any]] = {
        "string": {"type": ["string", "number"]},
        "identifier": {"type": "string", "pattern": r"^[A-Za-z_]\w*$"},
        "state": {"type": ["string", "number"]},
        "state_or_null": {"type": ["string", "number", "null"]},
        "int": {"type": "integer"},
        "bool": {"type": "boolean"},
        "regex": {"type": "string", "format": "regex"},
        "condition": {"type": "string"},
        "dtmf_mode": {"type": "string", "pattern": f"^({'|'.join(DTMF_MODES)})$"},
    }
    if kind in simple:
        return dict(simple[kind])
    if kind in _OBJECT_SECTIONS:
        obj = _ref(kind)
        if kind in ("transfer", "send_dtmf", "dial"):
            return {"anyOf": [{"type": ["string", "number"]}, obj]}
        if kind == "amd":
            return {"anyOf": [{"type": "boolean"}, obj]}
        if kind == "expect":
            return {"anyOf": [{"type": "string", "pattern": "^(speech|tone)$"}, obj]}
        return obj
    if kind == "nav_steps":
        return {"type": "array", "minItems": 1, "items": _ref("nav_step")}
    refs = {"prompt", "prompts", "duration", "dtmf_key", "hook", "hook_list", "hook_spec", "goto",
            "string_list", "input_list", "options", "states", "prompt_table"}
    if kind in refs:
        return _ref(kind)
    raise ValueError(f"no schema for value type {kind!r}")  # a new ValueType needs a case here


def flow_schema() -> dict[str, Any]:
    """The schema as a dict (see `schema_json` for text)."""
    part = _object("prompt_part")
    part.update(minProperties=1, maxProperties=1)
    defs: dict[str, Any] = {
        "duration": {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": _DURATION_PATTERN}],
                     "description": 'a duration: "5s", "250ms", "1.5s", "2m" or seconds'},
        "dtmf_key": {"anyOf": [{"type": "string", "pattern": _DTMF_PATTERN}, {"type": "null"}],
                     "description": f"one DTMF key ({' '.join(DTMF_KEYS)}), quoted"},
        "hook": {"type": "string", "pattern": _HOOK_PATTERN, "description": "module:function"},
        "hook_list": {"anyOf": [_ref("hook"), {"type": "array", "items": _ref("hook")}]},
        "hook_spec": {"anyOf": [_ref("hook"), _object("run")]},
        "input_list": {"anyOf": [_INPUT, {"type": "array", "minItems": 1, "items": _INPUT}],
                       "description": "dtmf, speech, or a list of both"},
        "string_list": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "prompt_part": part,
        "prompt": {"anyOf": [{"type": ["string", "number"]}, _ref("prompt_part"),
                             {"type": "array", "minItems": 1, "items": {"anyOf": [{"type": ["string", "number"]}, _ref("prompt_part")]}}]},
        "prompts": {"anyOf": [_ref("prompt"), {"type": "array", "items": _ref("prompt")}],
                    "description": "one prompt, or a list that escalates with each retry"},
        "prompt_table": {"type": "object", "additionalProperties": _ref("prompt")},
        "options": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": _DTMF_PATTERN},
                    "additionalProperties": {"anyOf": [{"type": ["string", "number"]}, _object("option")]},
                    "description": 'DTMF key -> state; quote keys: "1", "*", "#"'},
        "goto_arm": _object("goto_arm"),
        "goto": {"anyOf": [{"type": ["string", "number"]}, {"type": "array", "minItems": 1, "items": _ref("goto_arm")}]},
        "state": _object("state"),
        "states": {"type": "object", "minProperties": 1, "additionalProperties": _ref("state")},
        "include_file": _object("include"),
    }
    for kind, section in _OBJECT_SECTIONS.items():
        defs[kind] = _object(section)
    schema = _object("top")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "ivrkit flow",
        "description": "A phone menu (IVR) for ivrkit. Run `ivrkit check` for the full checks.",
        **schema,
        "$defs": defs,
    }


def schema_json(indent: int = 2) -> str:
    return json.dumps(flow_schema(), indent=indent, sort_keys=False)

