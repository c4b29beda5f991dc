"""Turn pydantic JSON Schema into a structural OpenAPI v3 schema for a CRD.

The API server accepts only structural schemas: every node typed, no `$ref`, no
nullable unions, `additionalProperties` only for maps. Optional fields are
simply not required; the server prunes unknown fields, so `extra="forbid"`
(`additionalProperties: false`) is dropped here. OpenAPI has no `propertyNames`, so
the constraints pydantic puts on map keys become a CEL rule over the keys.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]

_DROPPED = {"title"}
_MERGED_LISTS = {"x-kubernetes-validations"}


def structural_schema(model: type[BaseModel], key_rules: bool = True) -> Schema:
    """The structural schema of `model`, with every definition inlined.

    `key_rules=False` leaves map-key constraints to pydantic alone: for a status, which only
    the operator writes, and whose large maps would exceed the API server's CEL cost budget.
    """
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Schema] = raw.pop("$defs", {})
    return _convert(raw, defs, key_rules)


def _convert(node: Schema, defs: dict[str, Schema], key_rules: bool = True) -> Schema:
    node = _key_constraints(_inline(node, defs))
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "additionalProperties" and value is False):
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs, key_rules) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _convert(value, defs, key_rules)
        elif key == "anyOf":
            out[key] = [_convert(sub, defs, key_rules) for sub in value]
        elif key == "const":
            out["enum"] = [value]
        elif key == "default":
            if value is not None:
                out[key] = _without_nulls(value)
        elif key == "description":
            out[key] = _reflow(value)
        elif key == "propertyNames":
            rule = _key_rule(value) if key_rules else None
            if rule is not None:
                out["x-kubernetes-validations"] = [rule, *out.get("x-kubernetes-validations", [])]
        elif key == "x-kubernetes-validations":
            out[key] = [*out.get(key, []), *value]
        else:
            out[key] = value
    return out


def _inline(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Replace `$ref`, single `allOf` and `anyOf [X, null]` by X, keeping the field's own keys."""
    while True:
        target: Schema | None = None
        rest = dict(node)
        if "$ref" in rest:
            target = defs[rest.pop("$ref").rsplit("/", 1)[-1]]
        elif len(rest.get("allOf", ())) == 1:
            target = rest.pop("allOf")[0]
        elif "anyOf" in rest:
            kept = [s for s in rest["anyOf"] if s != {"type": "null"}]
            if len(kept) == len(rest["anyOf"]):
                return node
            rest.pop("anyOf")
            if len(kept) > 1:
                return {**rest, "anyOf": kept}
            target = kept[0]
        if target is None:
            return node
        node = _merge(target, rest)


def _key_constraints(node: Schema) -> Schema:
    """A map with key patterns (`patternProperties`) as `additionalProperties` plus
    `propertyNames`, which the next step turns into CEL."""
    patterns = node.get("patternProperties")
    if not patterns:
        return node
    if len(patterns) != 1 or "additionalProperties" in node:
        raise ValueError(f"cannot express map keys {list(patterns)} in a structural schema")
    ((pattern, value),) = patterns.items()
    rest = {k: v for k, v in node.items() if k != "patternProperties"}
    return {
        **rest,
        "additionalProperties": value,
        "propertyNames": {**node.get("propertyNames", {}), "pattern": pattern},
    }


def _key_rule(names: Schema) -> Schema | None:
    """The CEL twin of a map's key constraints (length and pattern), or None without any."""
    checks, words = [], []
    if "minLength" in names:
        checks.append(f"size(k) >= {names['minLength']}")
        words.append(f"at least {names['minLength']}")
    if "maxLength" in names:
        checks.append(f"size(k) <= {names['maxLength']}")
        words.append(f"at most {names['maxLength']}")
    parts = [f"be {' and '.join(words)} characters long"] if words else []
    if "pattern" in names:
        quoted = names["pattern"].replace("\\", "\\\\").replace("'", "\\'")
        checks.append(f"k.matches('{quoted}')")
        parts.append(f"match {names['pattern']}")
    if not checks:
        return None
    return {
        "rule": f"self.all(k, {' && '.join(checks)})",
        "message": f"keys must {' and '.join(parts)}",
    }


def _merge(base: Schema, override: Schema) -> Schema:
    merged = {**base, **override}
    for key in _MERGED_LISTS:
        if key in base and key in override:
            merged[key] = [*base[key], *override[key]]
    return merged


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _reflow(text: str) -> str:
    """Join docstring line breaks into paragraphs, as kubectl explain wraps text itself."""
    paragraphs = text.strip().split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)
