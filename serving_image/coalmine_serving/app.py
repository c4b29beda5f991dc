"""Routing and handlers for the V2, V1, health and metrics endpoints.

Only inference endpoints are counted in the request metrics, so probes and
scrapes never dilute the error rate the operator computes. Under overload an
inference request is refused with a 503 and Retry-After, decided as soon as its
headers are in so that its body is never kept or decoded (``refusal``; batching.py
says when); probes keep answering, so overload never turns a pod unready:
docs/serving.md says why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import orjson

from coalmine_serving import __version__, outputs, protocol_v1, protocol_v2
from coalmine_serving.batching import REFUSED, Batcher
from coalmine_serving.errors import NotFound, Overloaded, ServingError
from coalmine_serving.feedback import Ledger
from coalmine_serving.feedback_endpoint import FeedbackEndpoint
from coalmine_serving.http import JSON, OCTETS, Request, Respond, error_body
from coalmine_serving.inputs import Rows
from coalmine_serving.metrics import CONTENT_TYPE, Metrics
from coalmine_serving.mirror import Tee
from coalmine_serving.model import ServedModel

SERVER_NAME = "coalmine"
EXTENSIONS = ("binary_tensor_data",)
"""What ``GET /v2`` and the ServerMetadata RPC answer, with ``__version__``."""


class App:
    """One served model behind both protocols."""

    def __init__(
        self,
        name: str,
        version: str,
        model: ServedModel,
        metrics: Metrics,
        ledger: Ledger,
        *,
        max_batch_size: int,
        max_batch_wait_ms: float,
        max_rows: int,
        max_queue_ms: float = 0.0,
        tee: Tee | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.model = model
        self.metrics = metrics
        self.max_rows = max_rows
        self.ready = True
        self.tee = tee
        self.ledger = ledger
        self.feedback = FeedbackEndpoint(name, ledger)
        self.batcher = Batcher(
            model.predict,
            metrics.batch,
            max_batch_size=max_batch_size,
            max_wait_ms=max_batch_wait_ms,
            max_queue_ms=max_queue_ms,
            on_shed=metrics.shed,
        )
        self.proba_batcher = (
            None
            if model.predict_proba is None
            else Batcher(
                outputs.labels_and_probabilities(model),
                lambda x, out: metrics.batch(x, outputs.labels(out)),
                max_batch_size=max_batch_size,
                max_wait_ms=max_batch_wait_ms,
                max_queue_ms=max_queue_ms,
                on_shed=metrics.shed,
            )
        )
        self._metadata = protocol_v2.model_metadata(name, version, model)
        name_b = name.encode()
        self._v2_infer = {
            b"/v2/models/" + name_b + b"/infer",
            b"/v2/models/" + name_b + b"/versions/" + version.encode() + b"/infer",
        }
        self._v1_predict = b"/v1/models/" + name_b + b":predict"
        self._feedback = {
            b"/v2/models/" + name_b + b"/feedback",
            b"/v2/models/" + name_b + b"/versions/" + version.encode() + b"/feedback",
        }

    def handle(self, request: Request, respond: Respond) -> None:
        """Entry point for every complete HTTP request."""
        started = time.perf_counter()
        path = request.path
        if path in self._v2_infer:
            self._infer(request, respond, started, "v2")
        elif path == self._v1_predict:
            self._infer(request, respond, started, "v1")
        elif path in self._feedback and request.method == b"POST":
            self.feedback.handle(request, respond)
        else:
            try:
                protocol, status, body, content_type = self._route(request)
            except ServingError as exc:
                protocol, status, body, content_type = (
                    _protocol_of(path),
                    exc.status,
                    error_body(exc.message),
                    JSON,
                )
            respond(status, body, content_type)
            if protocol is not None:
                self.metrics.request(protocol, status, time.perf_counter() - started)

    def _infer(self, request: Request, respond: Respond, started: float, protocol: str) -> None:
        v2: protocol_v2.InferRequest | None = None
        given: Any = None
        try:
            if request.method != b"POST":
                raise ServingError("use POST for inference", status=405)
            self.admit()
            x: Rows
            if protocol == "v2":
                v2 = protocol_v2.decode(
                    request.body, self.model, self.max_rows, request.inference_header
                )
                x, wanted = v2.rows, v2.outputs
            else:
                x, wanted, given = protocol_v1.decode(request.body, self.model, self.max_rows)
        except ServingError as exc:
            retry = exc.retry_after if isinstance(exc, Overloaded) else None
            respond(exc.status, error_body(exc.message), JSON, retry_after=retry)
            self._count(request.mirrored, protocol, exc.status, time.perf_counter() - started)
            return

        def done(future: asyncio.Future[Any]) -> None:
            if future.cancelled():  # the client went away; nobody to answer
                return
            exc = future.exception()
            status, content_type, json_length, retry = 200, JSON, None, None
            if isinstance(exc, Overloaded):
                status, body, retry = exc.status, error_body(exc.message), exc.retry_after
            elif exc is not None:
                status, body = 500, error_body(str(exc))
            else:
                out = future.result()
                id = given if v2 is None else v2.id
                if not request.mirrored:  # a copy: its answer is compared, never labelled
                    id = self.remember(id, out, request.local)
                if v2 is None:
                    body = protocol_v1.encode(out, wanted, self.model.classes, id)
                elif v2.binary:
                    v2.id, content_type = id, OCTETS
                    body, json_length = protocol_v2.encode_binary(
                        self.name, self.version, v2, out, self.model.classes
                    )
                else:
                    v2.id = id
                    body = protocol_v2.encode(self.name, self.version, v2, out, self.model.classes)
            respond(status, body, content_type, json_length, retry)
            self._count(request.mirrored, protocol, status, time.perf_counter() - started)
            if status == 200 and not request.mirrored:
                self.shadow(x, future.result())

        future = self.batcher_for(wanted).submit(x)
        future.add_done_callback(done)
        request.on_lost = future.cancel

    def remember(self, given: Any, out: Any, host: str) -> Any:
        """The id answering a request: the client's (``given``), else a new one naming this
        process as reached on its local address ``host``. The predicted labels are kept
        under it for feedback, unless the client's id is not a string (echoed, not kept)."""
        if given is None or given == "":
            return self.ledger.answer(outputs.labels(out), host)
        if isinstance(given, str):
            self.ledger.store.put(given, outputs.labels(out))
        return given

    def shadow(self, rows: Rows, out: Any) -> None:
        """Offer a client's answered request to the tee of shadow steps (mirror.py)."""
        tee = self.tee
        if tee is not None and tee.target is not None:
            tee.offer(rows, outputs.labels(out))

    def _count(self, mirrored: bool, protocol: str, status: int, seconds: float) -> None:
        if mirrored:
            self.metrics.mirrored(status)
        else:
            self.metrics.request(protocol, status, seconds)

    def refusal(self, method: bytes, path: bytes) -> Overloaded | None:
        """The refusal of an inference request whose headers are in (http.Gate): the queue
        ahead is over the budget. None for any other request, or within the budget."""
        if method != b"POST" or self._infer_protocol(path) is None:
            return None
        return self._over_budget()

    def refused(self, path: bytes, mirrored: bool, status: int) -> None:
        """Count a refusal http.Gate wrote (as the handler's own are counted)."""
        self.metrics.shed(REFUSED)
        protocol = self._infer_protocol(path)
        assert protocol is not None  # only inference requests are refused
        self._count(mirrored, protocol, status, 0.0)

    def _infer_protocol(self, path: bytes) -> str | None:
        if path in self._v2_infer:
            return "v2"
        return "v1" if path == self._v1_predict else None

    def admit(self) -> None:
        """Refuse (`Overloaded`, counted) when either batcher's queued work outlasts the
        budget."""
        refused = self._over_budget()
        if refused is not None:
            self.metrics.shed(REFUSED)
            raise refused

    def _over_budget(self) -> Overloaded | None:
        for batcher in (self.batcher, self.proba_batcher):
            refused = None if batcher is None else batcher.over_budget()
            if refused is not None:
                return refused
        return None

    def batcher_for(self, wanted: tuple[str, ...]) -> Batcher:
        """The batches that answer ``wanted``: probabilities (labels travel with them) or labels."""
        if outputs.PROBA in wanted and self.proba_batcher is not None:
            return self.proba_batcher
        return self.batcher

    def check_model(self, name: str, version: str | None) -> None:
        """A 404 unless ``name`` is the model served and ``version`` (when given) its version."""
        if name != self.name:
            raise NotFound(f"model {name!r} not found; this server serves {self.name!r}")
        if version is not None and version != self.version:
            raise NotFound(f"model {self.name!r} has no version {version!r}")

    def _route(self, request: Request) -> tuple[str | None, int, bytes, bytes]:
        parts = request.path.decode("utf-8", "replace").strip("/").split("/")
        if request.method != b"GET":
            if parts[-1] in ("infer", "feedback") or parts[-1].endswith(":predict"):
                self._model_path(parts)  # 404 for an unknown model or version
            raise ServingError(f"{request.method.decode()} is not allowed here", status=405)
        if parts == ["metrics"]:
            return None, 200, self.metrics.render(), CONTENT_TYPE.encode()
        if parts == [""]:
            return None, 200, b'{"status":"alive"}', JSON
        if parts == ["v2"]:
            doc = {"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS}
            return None, 200, orjson.dumps(doc), JSON
        if parts == ["v2", "health", "live"]:
            return None, 200, b'{"live":true}', JSON
        if parts == ["v2", "health", "ready"]:
            return None, *self._ready_body({"ready": self.ready}), JSON
        if parts[:2] == ["v2", "models"] and len(parts) > 2:
            rest = self._model_path(parts)
            if rest == []:
                return None, 200, self._metadata, JSON
            if rest == ["ready"]:
                return None, *self._ready_body({"name": self.name, "ready": self.ready}), JSON
            if rest == ["infer"]:
                raise ServingError("use POST for inference", status=405)
            if rest == ["feedback"]:
                raise ServingError("use POST to send feedback", status=405)
            if rest == ["mirror"]:
                return None, 200, self._mirror_report(), JSON
        if parts == ["v1", "models"]:
            return None, 200, orjson.dumps({"models": [self.name]}), JSON
        if parts[:2] == ["v1", "models"] and len(parts) == 3:
            self._model_path(parts)
            body = {"name": self.name, "ready": self.ready}
            return None, *self._ready_body(body), JSON
        raise NotFound(f"no endpoint at {request.path.decode('utf-8', 'replace')}")

    def _model_path(self, parts: list[str]) -> list[str]:
        """Check the model (and version) named in the path; return what follows."""
        rest, version = parts[3:], None
        if rest[:1] == ["versions"]:
            version = rest[1] if len(rest) > 1 else ""
            rest = rest[2:]
        self.check_model(parts[2].removesuffix(":predict"), version)
        return rest

    def _mirror_report(self) -> bytes:
        """GET /v2/models/{name}/mirror: what this stable pod's mirror did, with the last
        disagreeing rows (unless the mirror file turned examples off)."""
        if self.tee is None:
            raise NotFound("this pod does not mirror: it is a canary or has no --mirror-config")
        target, stats = self.tee.target, self.tee.stats
        doc = {
            "target": None if target is None else dataclasses.asdict(target),
            "canaries": {
                name: {
                    "requests": f.outcomes,
                    "compared": f.compared,
                    "agreeing": f.agreeing,
                    "confusion": [
                        [s, c, n] for (s, c), n in sorted(stats.confusion[name].cells.items())
                    ]
                    if name in stats.confusion
                    else [],
                }
                for name, f in stats.by_canary.items()
            },
            "examples": list(stats.examples),
        }
        return orjson.dumps(doc)

    def _ready_body(self, doc: dict[str, Any]) -> tuple[int, bytes]:
        return (200 if self.ready else 503), orjson.dumps(doc)


def _protocol_of(path: bytes) -> str | None:
    """Count failed inference calls (such as an unknown model) under their protocol."""
    if path.startswith(b"/v2/models/") and path.endswith(b"/infer"):
        return "v2"
    if path.startswith(b"/v1/models/") and path.endswith(b":predict"):
        return "v1"
    return None
