"""The experiment config's JSON schema (workflow/schemas/config.schema.yaml), and checking a
config against it as the workflow does: Snakemake's ``--config`` passes nested numbers as
strings, so they are coerced where the schema wants numbers first, and the first violation
is one line naming the key."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from wmrobust.config import ConfigError, parse_number, read_yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
"""Present in a source checkout; an installed package has no workflow/."""


def coerce_numbers(config: Any, schema: dict[str, Any] | str | Path) -> Any:
    """Turn numeric strings into numbers (and ``true``/``false`` into booleans), in place,
    wherever the JSON schema (a dict or a YAML file) wants an integer, a number (or a
    boolean): Snakemake's ``--config`` passes numbers inside
    nested values as strings (``scales={"smoke": {"perturbation_levels": {"noise": [0.2]}}}``).
    Follows ``properties``, ``additionalProperties``, ``items``, ``anyOf``/``oneOf`` and local
    ``$ref``s; strings where a string is also valid, and non-finite numbers, are left for the
    schema to judge. A key the schema does not allow (``additionalProperties: false``) is
    refused with a ConfigError naming it and the valid keys, instead of the schema validator's
    dump of the whole schema. Returns ``config``."""
    if not isinstance(schema, dict):
        schema = read_yaml(schema, "config schema")
    return _coerce_node(config, schema, schema, "")


def check_schema(config: Any, schema: dict[str, Any] | str | Path) -> None:
    """coerce_numbers, then the JSON schema (a dict or a YAML file): the first violation is
    refused with a ConfigError on one line naming the key, the value and what is allowed,
    instead of the validator's dump of the failing schema. A name that does not match its
    pattern is refused with the pattern and the schema's description of it."""
    import jsonschema

    if not isinstance(schema, dict):
        schema = read_yaml(schema, "config schema")
    coerce_numbers(config, schema)
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    where = ""
    for part in error.absolute_path:
        where = f"{where}[{part}]" if isinstance(part, int) else f"{where}.{part}" if where else str(part)
    if error.validator != "pattern":
        raise ConfigError(f"{where or 'config'}: {error.message}")
    name = "name " if "propertyNames" in error.absolute_schema_path else ""
    allowed = f" ({error.schema['description']})" if "description" in error.schema else ""
    raise ConfigError(f"{where}: {name}{error.instance!r} does not match {error.validator_value}{allowed}")


def _schema_at(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its local ``$ref`` (``#/$defs/...``) resolved."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/"):
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema if isinstance(schema, dict) else {}


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if kind else set()


def _coerce_node(value: Any, schema: Any, root: dict[str, Any], path: str) -> Any:
    schema = _schema_at(schema, root)
    branches = [_schema_at(b, root) for b in schema.get("anyOf", []) + schema.get("oneOf", [])]
    if isinstance(value, str):
        accepted = set().union(_types(schema), *map(_types, branches))
        if "boolean" in accepted and "string" not in accepted and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if "string" in accepted or not accepted & {"integer", "number"}:
            return value
        number = parse_number(value)
        if isinstance(number, float) and not math.isfinite(number):
            return value
        if "number" not in accepted and isinstance(number, float):
            return int(number) if number.is_integer() else value
        return number
    container = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else None
    if container is None:
        return value
    if container not in _types(schema):
        match = next((b for b in branches if container in _types(b)), None)
        return value if match is None else _coerce_node(value, match, root, path)
    if container == "object":
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key in list(value):
            if extra is False and key not in properties:
                where = f"{path}.{key}" if path else str(key)
                raise ConfigError(f"{where}: unknown config key; valid keys here: {', '.join(properties)}")
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                value[key] = _coerce_node(value[key], sub, root, f"{path}.{key}" if path else str(key))
    elif isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            value[i] = _coerce_node(item, schema["items"], root, f"{path}[{i}]")
    return value
