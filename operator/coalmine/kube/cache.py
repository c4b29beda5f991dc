"""What the watches last said about every object the operator reads: reads cost no request.

Kopf's watches fill it (handlers.py: an index handler per kind stores, the event handler
forgets a deletion), and the operator's own writes fill it with what the API server
answered, so a reconcile reads its own writes before their watch events arrive. An answer
never replaces a newer object: resourceVersions of one kind are compared as numbers
(etcd revisions) when both are numbers.

Reads go through it only once it is `ready`: kopf runs no event handler before every
indexed kind is listed, so from the first handler on, a miss means the object is absent.
Kinds the operator may write but not read (ConfigMaps: the chart grants no reads of them)
are `remembered` only: the cache keeps the answers to our writes, so an apply that would
change nothing is skipped, but reads of them still go to the API server.
Objects are kept as compact JSON text, parsed on each read: a tenth of the memory of the
parsed dicts (1,000 ModelDeployments with their children: about 80 KiB per object parsed),
and parsing gives every caller its own copy faster than copying a dict would.
Worker threads read while the loop writes, hence the lock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]

SKIPPED_METADATA = frozenset({"managedFields"})
"""Kept out of the cache: the operator never reads them, and they are most of an object."""


def slim(body: Mapping[str, Any]) -> Manifest:
    """The object as the cache keeps it (a new top level; nested values are shared)."""
    meta = body.get("metadata") or {}
    return {
        **body,
        "metadata": {k: v for k, v in meta.items() if k not in SKIPPED_METADATA},
    }


@dataclass(frozen=True)
class Entry:
    """One object as kept: what lists filter and answers are ordered by, and its text."""

    resource_version: str
    labels: Mapping[str, str]
    text: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Entry:
        meta = body["metadata"]
        return cls(
            str(meta.get("resourceVersion") or ""),
            dict(meta.get("labels") or {}),
            json.dumps(slim(body), separators=(",", ":")),
        )

    def newer_than(self, old: Entry) -> bool:
        """True unless both resourceVersions are numbers and this one is the lower."""
        a, b = old.resource_version, self.resource_version
        return not (a.isdigit() and b.isdigit()) or int(b) >= int(a)

    def body(self) -> Manifest:
        found: Manifest = json.loads(self.text)
        return found


def matches(labels: Mapping[str, str], selector: Mapping[str, str] | None) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


class Cache:
    """Objects of the watched kinds, by kind, namespace and name."""

    def __init__(self, kinds: Iterable[str], remembered: Iterable[str] = ()) -> None:
        self.kinds = frozenset(kinds)
        """Watched: the cache holds every object of these kinds the operator may read."""
        self.remembered = frozenset(remembered)
        """Not watched: only the answers to the operator's own writes."""
        self.ready = False
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str], dict[str, Entry]] = {}

    def covers(self, kind: str) -> bool:
        """Whether a read of `kind` may be answered here (a miss then means absent)."""
        return self.ready and kind in self.kinds

    def keeps(self, kind: str) -> bool:
        """Whether answers to writes of `kind` are kept (watched or remembered)."""
        return kind in self.kinds or kind in self.remembered

    def store(self, kind: str, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        namespace, name = meta.get("namespace") or "", meta["name"]
        entry = Entry.of(body)
        with self._lock:
            names = self._objects.setdefault((kind, namespace), {})
            old = names.get(name)
            if old is None or entry.newer_than(old):
                names[name] = entry

    def forget(self, kind: str, namespace: str | None, name: str) -> None:
        with self._lock:
            names = self._objects.get((kind, namespace or ""))
            if names is not None:
                names.pop(name, None)

    def get(self, kind: str, namespace: str | None, name: str) -> Manifest | None:
        with self._lock:
            found = self._objects.get((kind, namespace or ""), {}).get(name)
        return found.body() if found is not None else None

    def list(
        self, kind: str, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[Manifest]:
        """Objects of `kind` in `namespace` (None: every namespace) carrying `labels`."""
        with self._lock:
            if namespace is None:
                pools = [v for (k, _), v in self._objects.items() if k == kind]
            else:
                pools = [self._objects.get((kind, namespace), {})]
            found = [e for pool in pools for e in pool.values() if matches(e.labels, labels)]
        return [e.body() for e in found]
