"""Ground truth for answered predictions: their ids, a bounded store, feedback's outcomes.

Pure logic, no I/O: the endpoint (feedback_endpoint.py) parses a body with `parse`,
asks `Ledger.plan` which items are this process's and which name another, and applies
its own with `Ledger.apply`. A generated id names the process that answered (its
random nonce, a counter, and ``@host:port`` of its private feedback listener), so
feedback reaching another pod or worker can be forwarded to the one that holds the
prediction.

The store keeps the predicted labels (or values) of each answered request, oldest
first, within a number of rows and an age. Feedback for an id that left it is `LATE`
(the truth came after the store had let the prediction go), for an id it never held
`UNKNOWN`. Labelling an id twice counts the second as a `DUPLICATE`, so resending a
body is safe.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from coalmine_serving import agreement
from coalmine_serving.mirror import DELTA_BUCKETS

MATCHED = "matched"
DUPLICATE = "duplicate"
LATE = "late"
UNKNOWN = "unknown"
INVALID = "invalid"
FORWARDED = "forwarded"
UNREACHABLE = "unreachable"
OUTCOMES = (MATCHED, DUPLICATE, LATE, UNKNOWN, INVALID, FORWARDED, UNREACHABLE)
"""What became of a feedback item: its truth was compared with the prediction, or had
been already, or came after the prediction left the store, or names no prediction kept;
its body was refused (400); or it was sent on to the process named by its id, which
answered, or could not be reached (the client is told `UNKNOWN`)."""

MAX_ITEMS = 10_000
MAX_UNKNOWN_IDS = 20
NONCE_BYTES = 4
ABS_ERROR_BUCKETS = DELTA_BUCKETS
"""|prediction - truth| of regressors, 1-2-5 per decade as the mirror's |delta|."""

Predictions = npt.NDArray[Any]


class Invalid(ValueError):
    """A body refused whole (400): ``items`` is how many it held, counted `INVALID`."""

    def __init__(self, message: str, items: int) -> None:
        super().__init__(message)
        self.message = message
        self.items = max(items, 1)


class Ids:
    """Prediction ids of this process: ``{nonce}-{seq:x}@{host}:{port}``.

    The nonce is random per process, so a restarted pod reusing an address never matches
    its predecessor's ids. ``seq`` is the store's (`Store.add`); the ``@host:port`` suffix
    is formatted once per local address.
    """

    def __init__(self, port: int, nonce: str | None = None) -> None:
        self.prefix = (nonce or secrets.token_hex(NONCE_BYTES)) + "-"
        self.port = port
        self._suffixes: dict[str, str] = {}
        self._generated = re.compile(re.escape(self.prefix) + rf"([1-9a-f][0-9a-f]*)@.+:{port}")

    def name(self, seq: int, host: str) -> str:
        """The id of prediction ``seq``, answered on the local address ``host``."""
        suffix = self._suffixes.get(host)
        if suffix is None:
            suffix = self._suffixes[host] = f"@{_bracketed(host)}:{self.port}"
        return f"{self.prefix}{seq:x}{suffix}"

    def owns(self, id: str) -> bool:
        return id.startswith(self.prefix)

    def seq(self, id: str) -> int | None:
        """The ``seq`` of an id this process could have generated (whichever of its
        addresses it names), else None."""
        match = self._generated.fullmatch(id)
        return None if match is None else int(match[1], 16)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def target(id: str) -> tuple[str, int] | None:
    """The (host, port) an id's ``@host:port`` names, or None when it names none."""
    _, at, where = id.rpartition("@")
    host, colon, port = where.rpartition(":")
    if not at or not colon or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    host = host.removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host, int(port)


def near(host: str, local: str) -> bool:
    """Whether this process may forward to ``host``, reached on its address ``local``:
    the same IPv4 /16 (a cluster's pod network) or IPv6 /48, or loopback to loopback.
    Any other address in an id is not followed, so a client cannot make the server
    POST where it likes."""
    try:
        a, b = ipaddress.ip_address(host), ipaddress.ip_address(local)
    except ValueError:
        return False
    if a.is_loopback or b.is_loopback:
        return a.is_loopback and b.is_loopback
    if a.version != b.version or a.is_unspecified or a.is_multicast:
        return False
    shift = 16 if a.version == 4 else 80
    return int(a) >> shift == int(b) >> shift


@dataclass(slots=True)
class Item:
    """One feedback item: the prediction's id and one truth per row."""

    index: int
    """Its place in the body the client sent (error messages name it)."""
    id: str
    truth: list[Any]


def parse(body: bytes, classifier: bool) -> list[Item]:
    """``{"feedback": [{"id": ..., "truth": ...}, ...]}`` as items, or `Invalid` naming the
    first wrong item and field. A forwarded body's ``indexes`` keep the client's numbering."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"malformed JSON: {exc}", 1) from None
    items = doc.get("feedback") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise Invalid('the body must be {"feedback": [{"id": ..., "truth": ...}, ...]}', 1)
    if len(items) > MAX_ITEMS:
        raise Invalid(f"too many items: {len(items)} > {MAX_ITEMS}", len(items))
    indexes = doc.get("indexes")
    if not (
        isinstance(indexes, list)
        and len(indexes) == len(items)
        and all(type(i) is int for i in indexes)
    ):
        indexes = range(len(items))
    parsed = []
    for index, item in zip(indexes, items, strict=True):
        where = f"feedback[{index}]"
        if not isinstance(item, dict):
            raise Invalid(f"{where} must be an object with 'id' and 'truth'", len(items))
        id = item.get("id")
        if not isinstance(id, str) or not id:
            raise Invalid(f"{where}.id must be a non-empty string", len(items))
        truth = item.get("truth")
        values = truth if isinstance(truth, list) else [truth]
        if not all(_fits(v, classifier) for v in values):
            kind = "class labels (strings or numbers)" if classifier else "numbers"
            raise Invalid(
                f"{where}.truth must be one value or a list of values, one per row: {kind}",
                len(items),
            )
        parsed.append(Item(index, id, values))
    return parsed


def _fits(value: Any, classifier: bool) -> bool:
    if isinstance(value, bool):
        return classifier
    return isinstance(value, int | float) or (classifier and isinstance(value, str))


_LABELLED: Predictions = np.empty(0)
"""A ring slot's predictions once labelled: no rows left, and feedback is a duplicate."""


class Store:
    """Predictions of answered requests, oldest first, within ``max_rows`` rows (shared by
    both kinds of id, the older leaving first) and ``max_age`` seconds.

    Generated ids are kept in a ring of ``max_rows`` slots indexed by their ``seq``, which
    `add` issues: parallel lists of times and predictions, so keeping one (on every
    answered request) is a few list assignments and creates no object the cyclic GC
    tracks; a tuple per request, 100k alive, made its full collections walk them all
    (benchmarks/README.md, "Feedback store cost"). Every seq up to `last` was kept, so
    one before `first` is `LATE`, and a labelled slot stays `DUPLICATE` until overwritten.

    Client-given ids, rarer, are kept by id in ordered dicts; an id leaving them is
    remembered for as long as the store could hold it again. Entries past their age
    leave when `expire` runs (before feedback is looked up, and at a scrape), so the rows
    bound alone holds the memory.
    """

    def __init__(
        self, max_rows: int, max_age: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_rows = max_rows
        self.max_age = max_age
        self.rows = 0
        self.first = 1
        """The oldest seq kept (none when past `last`)."""
        self.last = 0
        """The newest seq issued."""
        self._clock = clock
        self._slots = max_rows
        self._times = [0.0] * max_rows
        self._predictions: list[Predictions | None] = [None] * max_rows
        """By seq % max_rows: kept predictions, `_LABELLED`, or None once they left."""
        self._kept = 0
        self._live: OrderedDict[str, tuple[float, Predictions]] = OrderedDict()
        self._past: OrderedDict[str, bool] = OrderedDict()
        """Client ids no longer live: True when labelled, False when evicted first."""

    def __len__(self) -> int:
        return self._kept + len(self._live)

    def __contains__(self, id: str) -> bool:
        """Whether a client gave ``id`` (kept, or remembered as gone)."""
        return id in self._live or id in self._past

    def add(self, predictions: Predictions) -> int:
        """Keep a request's predictions under a new seq (for a generated id), returned."""
        seq = self.last = self.last + 1
        if seq - self.first == self._slots:  # every slot taken: this one is the oldest's
            self._evict_generated()
        slot = seq % self._slots
        self._times[slot] = self._clock()
        self._predictions[slot] = predictions
        self._kept += 1
        self.rows += len(predictions)
        while self.rows > self.max_rows:
            self._evict()
        return seq

    def put(self, id: str, predictions: Predictions) -> None:
        """Keep a request's predictions under the client's ``id``; a reused id replaces
        the older entry."""
        old = self._live.pop(id, None)
        if old is not None:
            self.rows -= len(old[1])
        else:
            self._past.pop(id, None)
        self._live[id] = (self._clock(), predictions)
        self.rows += len(predictions)
        while self.rows > self.max_rows:
            self._evict()

    def _evict(self) -> None:
        """Let the oldest prediction of either kind go."""
        live = self._live
        if live and (
            self.first > self.last
            or next(iter(live.values()))[0] <= self._times[self.first % self._slots]
        ):
            self._evict_given()
        else:
            self._evict_generated()

    def _evict_generated(self) -> None:
        slot = self.first % self._slots
        predictions = self._predictions[slot]
        if predictions is not None and predictions is not _LABELLED:
            self._predictions[slot] = None
            self.rows -= len(predictions)
            self._kept -= 1
        self.first += 1

    def _evict_given(self) -> None:
        id, (_, predictions) = self._live.popitem(last=False)
        self.rows -= len(predictions)
        self._remember(id, False)

    def expire(self) -> None:
        """Let go of the predictions older than ``max_age``."""
        oldest = self._clock() - self.max_age
        times, slots = self._times, self._slots
        while self.first <= self.last and times[self.first % slots] < oldest:
            self._evict_generated()
        live = self._live
        while live and next(iter(live.values()))[0] < oldest:
            self._evict_given()

    def _remember(self, id: str, labelled: bool) -> None:
        """A client id leaves the store (never one it remembers already: `put` forgot it)."""
        self._past[id] = labelled
        if len(self._past) > self.max_rows:
            self._past.popitem(last=False)

    def find(self, key: str | int) -> Predictions | str:
        """The predictions kept under a client id or a seq, or why there are none:
        DUPLICATE, LATE, UNKNOWN."""
        if isinstance(key, str):
            entry = self._live.get(key)
            if entry is not None:
                return entry[1]
            past = self._past.get(key)
            return UNKNOWN if past is None else DUPLICATE if past else LATE
        if not 0 < key <= self.last:
            return UNKNOWN
        found = self._predictions[key % self._slots] if key > self.last - self._slots else None
        return LATE if found is None else DUPLICATE if found is _LABELLED else found

    def label(self, key: str | int) -> Predictions:
        """Take the predictions of a client id or a seq out (they now hold a truth);
        KeyError if none are kept."""
        if isinstance(key, str):
            _, predictions = self._live.pop(key)
            self.rows -= len(predictions)
            self._remember(key, True)
            return predictions
        found = self.find(key)
        if isinstance(found, str):
            raise KeyError(key)
        self._predictions[key % self._slots] = _LABELLED
        self.rows -= len(found)
        self._kept -= 1
        return found


@dataclass
class Counts:
    """A feedback answer: items by outcome, and the first ids that matched nothing."""

    matched: int = 0
    duplicate: int = 0
    late: int = 0
    unknown: int = 0
    unknown_ids: list[str] = field(default_factory=list)

    def add(self, outcome: str, id: str) -> None:
        if outcome in (UNKNOWN, LATE, UNREACHABLE):
            if len(self.unknown_ids) < MAX_UNKNOWN_IDS:
                self.unknown_ids.append(id)
            outcome = UNKNOWN if outcome == UNREACHABLE else outcome
        setattr(self, outcome, getattr(self, outcome) + 1)

    @classmethod
    def of(cls, doc: Any) -> Counts:
        """Another process's answer (its JSON body); ValueError when it is not one."""
        if not isinstance(doc, dict):
            raise ValueError("not a feedback answer")
        numbers: dict[str, Any] = {o: doc.get(o) for o in (MATCHED, DUPLICATE, LATE, UNKNOWN)}
        ids = doc.get("unknownIds")
        if not all(type(n) is int for n in numbers.values()) or not isinstance(ids, list):
            raise ValueError("not a feedback answer")
        return cls(**numbers, unknown_ids=[str(i) for i in ids[:MAX_UNKNOWN_IDS]])

    def merge(self, other: Counts) -> None:
        self.matched += other.matched
        self.duplicate += other.duplicate
        self.late += other.late
        self.unknown += other.unknown
        room = MAX_UNKNOWN_IDS - len(self.unknown_ids)
        self.unknown_ids.extend(other.unknown_ids[: max(room, 0)])

    @property
    def status(self) -> int:
        """200 when every item holds a truth now, 404 when any matched nothing."""
        return 404 if self.unknown or self.late else 200

    def body(self) -> bytes:
        return orjson.dumps(
            {
                MATCHED: self.matched,
                DUPLICATE: self.duplicate,
                LATE: self.late,
                UNKNOWN: self.unknown,
                "unknownIds": self.unknown_ids,
            }
        )


class Stats:
    """What feedback showed, for the metrics: items by outcome, labelled and correct rows
    (classifiers), |prediction - truth| per row (regressors)."""

    def __init__(self, classifier: bool) -> None:
        self.classifier = classifier
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        self.rows = 0
        self.correct = 0
        self.abs_error = np.zeros(len(ABS_ERROR_BUCKETS) + 1, dtype=np.int64)
        self.abs_error_sum = 0.0
        self._edges = np.asarray(ABS_ERROR_BUCKETS)

    def compared(self, result: agreement.Comparison) -> None:
        self.rows += result.rows
        if self.classifier:
            self.correct += result.agreeing
            return
        index = np.searchsorted(self._edges, result.deltas, side="left")
        self.abs_error += np.bincount(index, minlength=len(self.abs_error))
        self.abs_error_sum += float(result.deltas.sum())


@dataclass
class Plan:
    """A valid body split: items this process looks up, items per other process."""

    local: list[Item] = field(default_factory=list)
    remote: dict[tuple[str, int], list[Item]] = field(default_factory=dict)


class Ledger:
    """The store, the ids that name this process, and the figures of feedback."""

    def __init__(self, store: Store, ids: Ids, classifier: bool) -> None:
        self.store = store
        self.ids = ids
        self.stats = Stats(classifier)

    def answer(self, predictions: Predictions, host: str) -> str:
        """A new id for a request answered on the local address ``host``, its predictions
        kept under it."""
        return self.ids.name(self.store.add(predictions), host)

    def plan(self, items: list[Item], local: str | None) -> Plan:
        """Split items between this process and the others their ids name (those ``near``
        the local address ``local``; None forwards nothing), and check the truths of the
        ones kept here have a value per predicted row: `Invalid` otherwise, before
        anything is applied."""
        self.store.expire()
        plan = Plan()
        for item in items:
            where = None if self.ids.owns(item.id) else target(item.id)
            if where is not None and local is not None and near(where[0], local):
                plan.remote.setdefault(where, []).append(item)
                continue
            plan.local.append(item)
            found = self.store.find(self._key(item.id))
            if not isinstance(found, str) and len(found) != len(item.truth):
                raise Invalid(
                    f"feedback[{item.index}].truth has {len(item.truth)} values for a"
                    f" prediction of {len(found)} rows",
                    len(items),
                )
        return plan

    def apply(self, items: list[Item], counts: Counts) -> None:
        """Compare the truths of this process's items with their predictions."""
        predicted: list[Predictions] = []
        truths: list[Any] = []
        for item in items:
            key = self._key(item.id)
            found = self.store.find(key)
            outcome = found if isinstance(found, str) else MATCHED
            if outcome == MATCHED:
                predicted.append(self.store.label(key))
                truths.extend(item.truth)
            self.count(outcome, 1)
            counts.add(outcome, item.id)
        if predicted:
            result = agreement.compare(
                np.concatenate(predicted), truths, classifier=self.stats.classifier
            )
            self.stats.compared(result)

    def _key(self, id: str) -> str | int:
        """Where the store keeps ``id``'s prediction: under its seq when this process
        generated it, under the id itself when a client gave it (even one of ours)."""
        seq = self.ids.seq(id)
        return id if seq is None or id in self.store else seq

    def count(self, outcome: str, items: int) -> None:
        self.stats.outcomes[outcome] += items
