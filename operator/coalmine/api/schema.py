"""Turn pydantic JSON Schema into a structural OpenAPI v3 schema for a CRD.

The API server accepts only structural schemas: every node typed, no `$ref`, no
nullable unions, `additionalProperties` only for maps. Optional fields are
simply not required; the server prunes unknown fields, so `extra="forbid"`
(`additionalProperties: false`) is dropped here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]

_DROPPED = {"title", "propertyNames"}
_MERGED_LISTS = {"x-kubernetes-validations"}


def structural_schema(model: type[BaseModel]) -> Schema:
    """The structural schema of `model`, with every definition inlined."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Schema] = raw.pop("$defs", {})
    return _convert(raw, defs)


def _convert(node: Schema, defs: dict[str, Schema]) -> Schema:
    node = _inline(node, defs)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "additionalProperties" and value is False):
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _convert(value, defs)
        elif key == "anyOf":
            out[key] = [_convert(sub, defs) for sub in value]
        elif key == "const":
            out["enum"] = [value]
        elif key == "default":
            if value is not None:
                out[key] = _without_nulls(value)
        elif key == "description":
            out[key] = _reflow(value)
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
