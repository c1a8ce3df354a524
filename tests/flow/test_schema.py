"""The JSON Schema: well-formed draft 2020-12, generated from the same key table the loader
uses, and accepting every real flow. `jsonschema` is not a dependency, so a small validator for
the keywords the schema uses lives here (and refuses keywords it does not know, so the schema
cannot silently outgrow it)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivrkit.flow.loader import check_flow
from ivrkit.flow.schema import flow_schema, schema_json
from ivrkit.flow.spec import SECTIONS, key_names
from tests.flow.helpers import GOOD_FLOW

ROOT = Path(__file__).resolve().parents[2]
_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}
_KNOWN = {"$ref", "type", "properties", "additionalProperties", "required", "anyOf", "items", "minItems",
          "minProperties", "maxProperties", "propertyNames", "pattern", "minimum", "format", "description",
          "$schema", "$id", "$defs", "title"}


def errors(schema: dict[str, Any], value: Any, root: dict[str, Any], path: str = "$") -> list[str]:
    unknown = set(schema) - _KNOWN
    assert not unknown, f"test validator does not know {unknown} at {path}"
    if "$ref" in schema:
        return errors(root["$defs"][schema["$ref"].removeprefix("#/$defs/")], value, root, path)
    out: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            return [f"{path}: {value!r} is not {types}"]
    if "anyOf" in schema and all(errors(s, value, root, path) for s in schema["anyOf"]):
        out.append(f"{path}: {value!r} matches none of anyOf")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        out.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, (int, float)) and "minimum" in schema and value < schema["minimum"]:
        out.append(f"{path}: {value} < minimum")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append(f"{path}: too few items")
        for i, item in enumerate(value):
            if "items" in schema:
                out += errors(schema["items"], item, root, f"{path}[{i}]")
    if isinstance(value, dict):
        if not schema.get("minProperties", 0) <= len(value) <= schema.get("maxProperties", 10**9):
            out.append(f"{path}: wrong number of keys")
        out += [f"{path}: missing {k}" for k in schema.get("required", []) if k not in value]
        props = schema.get("properties", {})
        for key, item in value.items():
            if "propertyNames" in schema:
                out += errors(schema["propertyNames"], str(key), root, f"{path}.{key}")
            if key in props:
                out += errors(props[key], item, root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}: unknown key {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += errors(schema["additionalProperties"], item, root, f"{path}.{key}")
    return out


def test_schema_is_well_formed_json_draft_2020_12() -> None:
    schema = json.loads(schema_json())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema == flow_schema()
    text = json.dumps(schema)
    for ref in re.findall(r'"\$ref": "#/\$defs/(\w+)"', text):
        assert ref in schema["$defs"], ref


@pytest.mark.parametrize("section, where", [
    ("top", None), ("state", "state"), ("menu", "menu"), ("collect", "collect"), ("defaults", "settings"),
    ("hooks", "hooks"), ("transfer", "transfer"), ("send_dtmf", "send_dtmf"), ("dial", "dial"),
    ("goto_arm", "goto_arm"), ("prompt_part", "prompt_part"), ("include", "include_file")])
def test_schema_properties_are_the_loader_keys(section: str, where: str | None) -> None:
    schema = flow_schema()
    node = schema if where is None else schema["$defs"][where]
    assert tuple(node["properties"]) == key_names(section)
    assert node["additionalProperties"] is False
    assert set(node.get("required", [])) == {k.name for k in SECTIONS[section] if k.required}


def _keys_used(value: Any, into: set[str]) -> set[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            into.add(str(k))
            _keys_used(v, into)
    elif isinstance(value, list):
        for v in value:
            _keys_used(v, into)
    return into


def _good_flow_with_audio(tmp_path: Path) -> Path:
    (tmp_path / "hi.wav").write_bytes(b"RIFF")
    path = tmp_path / "acme.yaml"
    path.write_text(GOOD_FLOW.replace("{silence: 500ms},", "{silence: 500ms}, {audio: hi.wav},"))
    return path


def test_good_fixture_uses_every_key_and_the_loader_accepts_it(tmp_path: Path) -> None:
    path = _good_flow_with_audio(tmp_path)
    result = check_flow(path)
    assert result.issues == (), [i.format() for i in result.issues]
    every_key = {k.name for keys in SECTIONS.values() for k in keys}
    assert every_key <= _keys_used(yaml.safe_load(path.read_text()), set())


def _flow_files() -> list[Path]:
    return sorted((ROOT / "flows").glob("*.yaml")) + sorted((ROOT / "tests" / "flows_bad").glob("good_*.yaml"))


@pytest.mark.parametrize("path", _flow_files(), ids=lambda p: p.name)
def test_real_flows_validate_against_the_schema(path: Path) -> None:
    schema = flow_schema()
    assert errors(schema, yaml.safe_load(path.read_text()), schema) == []


def test_good_fixture_validates_and_typos_do_not(tmp_path: Path) -> None:
    schema = flow_schema()
    data = yaml.safe_load(_good_flow_with_audio(tmp_path).read_text())
    assert errors(schema, data, schema) == []
    data["states"]["main"]["menu"]["optoins"] = data["states"]["main"]["menu"].pop("options")
    data["states"]["pin"]["collect"]["max_digits"] = "four"
    data["states"]["main"]["menu"]["repeat_key"] = "**"
    found = errors(schema, data, schema)
    assert any("unknown key 'optoins'" in e for e in found)
    assert any("missing options" in e for e in found)
    assert any("max_digits" in e for e in found)
    assert any("repeat_key" in e for e in found)
