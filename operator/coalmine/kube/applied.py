"""When an apply would change nothing, so the operator can skip it.

An applied object carries a digest of what was applied (APPLIED_ANNOTATION). An apply is
unchanged when the object held in the cache carries the same digest, so no field we set was
added or removed since, and still holds every value we set, so nobody else changed one
(`kubectl scale`, `kubectl edit`). Values the API server adds (defaults, status) do not
count. A value the API server rewrites (a quantity "1000m" read back as "1") makes the apply
look changed: it is then sent, as it was before this check existed, never wrongly skipped.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

APPLIED_ANNOTATION = "coalmine.dev/applied"

Manifest = dict[str, Any]


def digest(manifest: Manifest) -> str:
    """A digest of the manifest as it would be applied, its own annotation left out."""
    meta = manifest.get("metadata") or {}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k != APPLIED_ANNOTATION
    }
    canonical = {**manifest, "metadata": {**meta, "annotations": annotations}}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stamped(manifest: Manifest) -> Manifest:
    """The manifest with its digest annotated (a new top level and metadata)."""
    meta = manifest.get("metadata") or {}
    annotations = {**(meta.get("annotations") or {}), APPLIED_ANNOTATION: digest(manifest)}
    return {**manifest, "metadata": {**meta, "annotations": annotations}}


def holds(actual: Any, desired: Any) -> bool:
    """Whether `actual` has every value of `desired`: maps may hold more keys, lists must
    match item by item; an empty map or list asks for nothing."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return not desired and actual is None
        return all(
            holds(actual[k], v) if k in actual else v in (None, {}, []) for k, v in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(actual, list):
            return not desired and actual is None
        return len(actual) == len(desired) and all(map(holds, actual, desired))
    return bool(actual == desired and type(actual) is type(desired))


def unchanged(held: Manifest, desired: Manifest) -> bool:
    """Whether applying `desired` (stamped) to the `held` object would change nothing."""
    ours = _applied_digest(desired)
    return ours is not None and ours == _applied_digest(held) and holds(held, desired)


def _applied_digest(obj: Manifest) -> str | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return annotations.get(APPLIED_ANNOTATION)
