"""The run form's `parameters` field: the pipeline's own parameters, typed, with their current values.

Prefect's UI draws the custom-run form from the deployment's parameter schema. The
plugin's flow takes a `parameters` object; for each deployment that field's schema
is replaced by one built from the parameters the pipeline's nodes take, nested as in
parameters.yml, each typed from its current value, which is its default. At run time
the flow compares what it got with these defaults and passes on only the values that
changed, as `kedro run --params key=value` would; the rest is read from parameters.yml
as it is then (see changed_values).
"""

from __future__ import annotations

from typing import Any

FIELD = "parameters"


def parameters_schema(values: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of the `parameters` field for these current values."""
    return {
        "title": "Parameters (parameters.yml)",
        "description": "The pipeline's parameters, as parameters.yml has them now. Change a value to "
        "run with it, as `kedro run --params key=value`; values left as they are come from "
        "parameters.yml when the run starts.",
        "type": "object",
        "properties": {key: _schema(value, key) for key, value in values.items()},
    }


def _schema(value: Any, title: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return {
            "title": title,
            "type": "object",
            "properties": {key: _schema(item, key) for key, item in value.items()},
        }
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    kind = next((name for python, name in kinds.items() if type(value) is python), None)
    schema: dict[str, Any] = {"title": title, "default": value}
    if kind == "array":
        schema["type"] = "array"
        schema["items"] = {}
    elif kind == "number":
        schema["type"] = "number"
    elif kind:
        schema["type"] = kind
    return schema


def defaults_of(schema: dict[str, Any]) -> dict[str, Any]:
    """The values a schema built by parameters_schema holds as defaults, nested."""
    found: dict[str, Any] = {}
    for key, prop in (schema.get("properties") or {}).items():
        if prop.get("type") == "object" and "properties" in prop:
            found[key] = defaults_of(prop)
        elif "default" in prop:
            found[key] = prop["default"]
    return found


def changed_values(given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The leaves of `given` that differ from `defaults` (or that it has no default for), nested."""
    changed: dict[str, Any] = {}
    for key, value in given.items():
        default = defaults.get(key, _MISSING)
        if isinstance(value, dict) and isinstance(default, dict):
            if inner := changed_values(value, default):
                changed[key] = inner
        elif value != default:
            changed[key] = value
    return changed


_MISSING = object()
