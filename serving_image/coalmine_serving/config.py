"""Command-line flags, each mirrored by a ``COALMINE_*`` environment variable.

Flags win over the environment, so a container image can carry defaults in its
environment while a developer overrides them on the command line. The flag names
are a stable interface: the operator, the benchmarks and the tests use them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAX_PORT = 65535


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to start, validated once."""

    name: str
    uri: str
    port: int = 8080
    grpc_port: int = 8081
    """The Open Inference Protocol's gRPC port; 0 serves no gRPC."""
    host: str = "0.0.0.0"
    sha256: str | None = None
    format: str | None = None
    workers: int = 1
    version: str = "1"
    variant: str = ""
    max_batch_size: int = 64
    max_batch_wait_ms: float = 0.0
    max_queue_ms: float = 50.0
    """The queueing budget: a request that would wait longer is refused (503); 0 queues all."""
    max_body_bytes: int = 4 * 1024 * 1024
    max_rows: int = 10_000
    allow_unsafe_pickle: bool = False
    reference: str | None = None
    signature: str | None = None
    drain_seconds: float = 5.0
    mount_root: str = "/mnt/models"
    mirror_config: str | None = None
    """The file (a ConfigMap's) naming the canary a stable pod copies requests to."""
    feedback_max_rows: int = 100_000
    """Predicted rows kept for feedback (docs/serving.md, Feedback)."""
    feedback_max_age_seconds: float = 3600.0
    check: bool = False


def _env(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def parse_settings(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> Settings:
    """Parse flags over environment defaults; raise SystemExit(2) on bad usage."""
    defaults = Settings(name="", uri="")
    p = argparse.ArgumentParser(
        prog="coalmine-serve",
        description="Serve one scikit-learn or ONNX model over the V2 and V1 inference protocols.",
    )

    def env_or(flag: str, default: object, *extra: str) -> object:
        value = _env(environ, "COALMINE_" + flag.upper().replace("-", "_"), *extra)
        return default if value is None else value

    p.add_argument("--name", default=env_or("name", None), help="model name in URLs")
    p.add_argument("--uri", default=env_or("uri", None), help="file://, pvc://, http(s)://, s3://")
    p.add_argument("--port", type=int, default=env_or("port", defaults.port))
    p.add_argument(
        "--grpc-port",
        type=int,
        default=env_or("grpc-port", defaults.grpc_port),
        help="V2 gRPC port (0: no gRPC)",
    )
    p.add_argument("--host", default=env_or("host", defaults.host))
    p.add_argument("--sha256", default=env_or("sha256", None), help="pinned artifact digest")
    p.add_argument(
        "--format",
        default=env_or("format", None),
        choices=["skops", "onnx", "joblib", "pickle"],
        help="artifact format (default: from the file extension)",
    )
    p.add_argument("--workers", type=int, default=env_or("workers", defaults.workers))
    p.add_argument(
        "--version",
        dest="version",
        default=env_or("version", defaults.version, "COALMINE_MODEL_VERSION"),
        help="model version served (also the `version` metric label)",
    )
    p.add_argument("--variant", default=env_or("variant", defaults.variant))
    p.add_argument(
        "--max-batch-size", type=int, default=env_or("max-batch-size", defaults.max_batch_size)
    )
    p.add_argument(
        "--max-batch-wait-ms",
        type=float,
        default=env_or("max-batch-wait-ms", defaults.max_batch_wait_ms),
    )
    p.add_argument(
        "--max-queue-ms",
        type=float,
        default=env_or("max-queue-ms", defaults.max_queue_ms),
        help="refuse (503, Retry-After) a request that would queue longer; 0: never refuse",
    )
    p.add_argument(
        "--max-body-bytes", type=int, default=env_or("max-body-bytes", defaults.max_body_bytes)
    )
    p.add_argument("--max-rows", type=int, default=env_or("max-rows", defaults.max_rows))
    p.add_argument(
        "--allow-unsafe-pickle",
        action="store_true",
        default=_truthy(_env(environ, "COALMINE_ALLOW_UNSAFE_PICKLE")),
    )
    p.add_argument("--reference", default=env_or("reference", None), help="drift reference")
    p.add_argument(
        "--signature",
        default=env_or("signature", None),
        help="the ModelVersion's signature (inline JSON or a file path): input names and types",
    )
    p.add_argument(
        "--drain-seconds", type=float, default=env_or("drain-seconds", defaults.drain_seconds)
    )
    p.add_argument("--mount-root", default=env_or("mount-root", defaults.mount_root))
    p.add_argument(
        "--mirror-config",
        default=env_or("mirror-config", None),
        help="JSON file naming the canary to mirror a share of requests to (re-read each second)",
    )
    p.add_argument(
        "--feedback-max-rows",
        type=int,
        default=env_or("feedback-max-rows", defaults.feedback_max_rows),
        help="predicted rows kept for feedback (the oldest requests' leave first)",
    )
    p.add_argument(
        "--feedback-max-age-seconds",
        type=float,
        default=env_or("feedback-max-age-seconds", defaults.feedback_max_age_seconds),
        help="how long a prediction is kept for feedback",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="load, verify and self-test the model, then exit 0 (or 1 with the reason)",
    )
    args = p.parse_args(list(argv))
    if not args.name or not args.uri:
        p.error("--name and --uri are required (or COALMINE_NAME and COALMINE_URI)")
    settings = Settings(**vars(args))
    for field in ("workers", "max_batch_size", "max_body_bytes", "max_rows", "feedback_max_rows"):
        if getattr(settings, field) < 1:
            p.error(f"--{field.replace('_', '-')} must be at least 1")
    if not 0 <= settings.grpc_port <= MAX_PORT:
        p.error(f"--grpc-port must be 0 (off) or a port up to {MAX_PORT}")
    if settings.grpc_port == settings.port:
        p.error("--grpc-port must differ from --port")
    for field in ("max_batch_wait_ms", "max_queue_ms", "drain_seconds"):
        if getattr(settings, field) < 0:
            p.error(f"--{field.replace('_', '-')} must not be negative")
    if not settings.feedback_max_age_seconds > 0:
        p.error("--feedback-max-age-seconds must be positive")
    return settings
