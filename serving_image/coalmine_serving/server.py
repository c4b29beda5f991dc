"""Process lifecycle: load, self-test, serve, and drain on SIGTERM.

The ports (HTTP, and gRPC unless ``--grpc-port 0``) open only after the model
has loaded and answered a self-test, so a ready endpoint always means a working
model. On SIGTERM readiness flips to 503 (and ready: false over gRPC) at once
while requests are still served for ``--drain-seconds`` (the time kube-proxy
and load balancers need to drop the endpoint); then the listeners close, idle
keep-alive connections are closed, in-flight requests and RPCs finish, and the
process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import warnings
from typing import Any

import uvloop

from coalmine_serving import loading
from coalmine_serving.app import App
from coalmine_serving.config import Settings
from coalmine_serving.drift import DriftTracker, parse_reference
from coalmine_serving.errors import LoadError
from coalmine_serving.feedback import Ids, Ledger, Store
from coalmine_serving.http import Connections, HttpProtocol
from coalmine_serving.metrics import Metrics
from coalmine_serving.mirror import ConfigWatcher, MirrorStats, Tee
from coalmine_serving.model import ServedModel, from_object, skip_sklearn_checks
from coalmine_serving.oip import listener
from coalmine_serving.signature import parse_signature

log = logging.getLogger("coalmine_serving")

TERMINATION_LOG = "/dev/termination-log"
CLOSE_GRACE_SECONDS = 10.0


def fail(reason: str) -> int:
    """Report a fatal reason as the single stderr line the operator surfaces."""
    line = f"coalmine-serve: {' '.join(reason.split())}"
    print(line, file=sys.stderr, flush=True)
    # Kubernetes mounts this file (terminationMessagePath); never create it elsewhere.
    path = os.environ.get("COALMINE_TERMINATION_LOG", TERMINATION_LOG)
    if os.path.isfile(path):
        with contextlib.suppress(OSError), open(path, "w") as f:
            f.write(line + "\n")
    return 1


def load(settings: Settings) -> tuple[ServedModel, DriftTracker | None]:
    """Fetch, verify, deserialise and self-test; raise LoadError on any problem."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        obj, fmt = loading.load_artifact(
            settings.uri,
            sha256=settings.sha256,
            fmt=settings.format,
            allow_unsafe_pickle=settings.allow_unsafe_pickle,
            mount_root=settings.mount_root,
        )
        signature = parse_signature(settings.signature) if settings.signature else None
        model = from_object(obj, fmt, signature)
        tracker = None
        if settings.reference and model.records:
            log.warning("drift is not tracked for a model with string inputs")
        elif settings.reference:
            tracker = DriftTracker(parse_reference(settings.reference, model.n_features))
    for warning in caught:  # reported only once loading succeeded: failures stay one line
        log.warning("while loading: %s", warning.message)
    return model, tracker


def run(settings: Settings) -> int:
    """Load, then serve with one or more worker processes; return the exit code."""
    logging.basicConfig(level=logging.WARNING, format="coalmine-serve: %(message)s")
    log.setLevel(logging.INFO)  # our own lifecycle lines; libraries stay at WARNING
    skip_sklearn_checks()
    try:
        model, tracker = load(settings)
    except LoadError as exc:
        return fail(str(exc))
    if settings.check:  # the operator's artifact check: loaded and self-tested is the verdict
        log.info(
            "%s version %s: artifact verified and self-tested", settings.name, settings.version
        )
        return 0
    gc.collect()
    gc.freeze()  # the model's objects never need scanning again
    log.info(
        "serving %s version %s (%s, %s predict path) on %s:%d, gRPC %s",
        settings.name,
        settings.version,
        model.platform,
        "fast" if model.fast else "public",
        settings.host,
        settings.port,
        settings.grpc_port or "off",
    )
    try:
        sock = _listen(settings.host, settings.port, reuse_port=settings.workers > 1)
    except OSError as exc:
        return fail(f"cannot listen on {settings.host}:{settings.port}: {exc}")
    if settings.grpc_port:
        try:  # the workers bind it themselves: a port taken fails here, once, not in each
            _listen(settings.host, settings.grpc_port, reuse_port=settings.workers > 1).close()
        except OSError as exc:
            return fail(f"cannot listen on {settings.host}:{settings.grpc_port} (gRPC): {exc}")
    if settings.workers == 1:
        return _serve_process(settings, model, tracker, sock)
    return _supervise(settings, model, tracker, sock)


def _listen(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _supervise(
    settings: Settings, model: ServedModel, tracker: DriftTracker | None, sock: socket.socket
) -> int:
    """Fork workers sharing the listening socket; forward SIGTERM; exit when all have."""
    children: list[int] = []
    for _ in range(settings.workers):
        pid = os.fork()
        if pid == 0:
            os._exit(_serve_process(settings, model, tracker, sock))
        children.append(pid)
    sock.close()

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        code = code or os.waitstatus_to_exitcode(status)
    return code


def _serve_process(
    settings: Settings, model: ServedModel, tracker: DriftTracker | None, sock: socket.socket
) -> int:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            runner.run(_serve(settings, model, tracker, sock))
        except OSError as exc:  # the gRPC port, taken since the check
            return fail(str(exc))
    return 0


async def _serve(
    settings: Settings, model: ServedModel, tracker: DriftTracker | None, sock: socket.socket
) -> None:
    loop = asyncio.get_running_loop()
    # A canary never mirrors, even when its pods mount the same file as stable's.
    mirrors = settings.mirror_config is not None and settings.variant != "canary"
    stats = MirrorStats(model.is_classifier) if mirrors else None
    # Each process's own port for feedback sent on by another (feedback_endpoint.py).
    feedback_sock = _listen(settings.host, 0, reuse_port=False)
    ledger = Ledger(
        Store(settings.feedback_max_rows, settings.feedback_max_age_seconds),
        Ids(feedback_sock.getsockname()[1]),
        model.is_classifier,
    )
    metrics = Metrics(
        settings.name,
        settings.version,
        settings.variant,
        is_classifier=model.is_classifier,
        drift=tracker,
        mirror=stats,
        feedback=ledger,
    )
    tee = None if stats is None else Tee(settings.name, stats)
    app = App(
        settings.name,
        settings.version,
        model,
        metrics,
        ledger,
        max_batch_size=settings.max_batch_size,
        max_batch_wait_ms=settings.max_batch_wait_ms,
        max_queue_ms=settings.max_queue_ms,
        max_rows=settings.max_rows,
        tee=tee,
    )
    watcher = None
    if tee is not None and settings.mirror_config is not None:
        watcher = ConfigWatcher(settings.mirror_config, tee)
        watcher.start()
    connections = Connections()
    servers = [
        await loop.create_server(
            lambda: HttpProtocol(app.handle, connections, settings.max_body_bytes, app),
            sock=s,
        )
        for s in (sock, feedback_sock)
    ]
    grpc_server = (
        await listener.start(app, settings, _named_host(settings.host))
        if settings.grpc_port
        else None
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    app.ready = False
    if watcher is not None:
        watcher.stop()
    log.info("SIGTERM: unready, draining for %.1fs", settings.drain_seconds)
    await asyncio.sleep(settings.drain_seconds)
    for server in servers:
        server.close()
    connections.close_idle()
    # New RPCs are refused at once; those in flight get the same grace as HTTP requests.
    grpc_stopped = (
        None if grpc_server is None else loop.create_task(grpc_server.stop(CLOSE_GRACE_SECONDS))
    )
    deadline = loop.time() + CLOSE_GRACE_SECONDS
    while connections.open and loop.time() < deadline:
        await asyncio.sleep(0.01)
    if grpc_stopped is not None:
        await grpc_stopped
    log.info("drained; exiting")


def _named_host(host: str) -> str:
    """The address gRPC prediction ids name: the listen address, or when that is a
    wildcard the address this host's name resolves to (a pod's IP), else loopback."""
    if host not in ("0.0.0.0", "::", ""):
        return host
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
