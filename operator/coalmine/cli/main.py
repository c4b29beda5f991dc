"""`coalmine`: run the operator, or look at and steer rollouts.

Commands never edit a resource's spec: `promote`, `abort`, `retry` and `undo`
set an annotation to a fresh token that the operator acts on once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import kopf
import prometheus_client
from kubernetes.client.exceptions import ApiException

from coalmine.api.deployment import COMMAND_ANNOTATIONS, ModelDeployment
from coalmine.api.governance import (
    APPROVED_BY_ANNOTATION,
    APPROVED_GROUPS_ANNOTATION,
    with_author,
)
from coalmine.api.strategy import RolloutStrategy, RolloutStrategySpec
from coalmine.cli import completion, report
from coalmine.cli.shadow import fetch as fetch_shadow
from coalmine.cli.timeline import audit_lines, history_line, render
from coalmine.controller import WORKERS
from coalmine.kube.client import Kube

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _operator(args: argparse.Namespace) -> int:
    import coalmine.handlers  # noqa: PLC0415  (registers the handlers on import)

    namespace = args.lease_namespace or _pod_namespace()
    coalmine.handlers.elect(
        None
        if namespace is None
        else coalmine.handlers.Election(namespace, args.lease_name, _identity())
    )
    coalmine.handlers.work_with(args.workers)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.metrics_port:
        prometheus_client.start_http_server(args.metrics_port)
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=not args.namespace,
            namespaces=args.namespace or [],
            liveness_endpoint=args.liveness,
        )
    )
    return 0


def _pod_namespace() -> str | None:
    """The namespace of the pod we run in (None outside a cluster)."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


def _identity() -> str:
    """This replica in the Lease: its pod name, and a nonce for a restarted container."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}-{uuid.uuid4().hex[:6]}"


def _load(args: argparse.Namespace) -> tuple[Kube, ModelDeployment]:
    kube = Kube()
    body = kube.get("ModelDeployment", args.namespace, args.name)
    if body is None:
        raise SystemExit(f"coalmine: modeldeployment {args.namespace}/{args.name} not found")
    return kube, ModelDeployment.model_validate(body)


def _strategy(kube: Kube, md: ModelDeployment) -> RolloutStrategySpec | None:
    if md.spec.strategy is not None:
        return md.spec.strategy
    if md.spec.strategy_ref is None:
        return None
    body = kube.get("RolloutStrategy", md.metadata.namespace, md.spec.strategy_ref.name)
    return RolloutStrategy.model_validate(body).spec if body else None


def _status(args: argparse.Namespace) -> int:
    kube, md = _load(args)
    events = [
        e
        for e in kube.list("Event", args.namespace)
        if e.get("involvedObject", {}).get("uid") == md.metadata.uid
    ]
    print(render(md, _strategy(kube, md), events))
    return 0


def _history(args: argparse.Namespace) -> int:
    _, md = _load(args)
    history = md.status.history if md.status else []
    if not history:
        print("no finished rollouts yet")
    for h in history:
        print(history_line(h))
        for line in audit_lines(h):
            print(f"    {line}")
    return 0


def _report(args: argparse.Namespace) -> int:
    kube = Kube()
    body = kube.get("ModelDeployment", args.namespace, args.name)
    if body is None:
        raise SystemExit(f"coalmine: modeldeployment {args.namespace}/{args.name} not found")
    record = (body.get("status") or {}).get("rolloutRecord") or {}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.name}-rev{record.get('revision', 0)}"
    page, png = out / f"{stem}.html", out / f"{stem}.png"
    canary = record.get("modelVersion")
    strategy = _strategy(kube, ModelDeployment.model_validate(body))
    shadowed = strategy is not None and any(s.mirror for s in strategy.steps)
    shadow = fetch_shadow(kube, args.namespace, args.name, canary) if canary and shadowed else None
    page.write_text(report.render(body, shadow), encoding="utf-8")
    print(f"report: {page}")
    if args.no_png:
        return 0
    if report.chromium() is None:
        print("png: skipped, it needs chromium (Debian: apt-get install chromium)")
        return 0
    report.screenshot(page, png)
    print(f"png: {png}")
    return 0


def _whoami(kube: Kube) -> tuple[str, tuple[str, ...]]:
    """Who the cluster says we are: the name that commands and approvals carry."""
    try:
        user, groups = kube.whoami()
    except ApiException as exc:
        raise SystemExit(
            f"coalmine: cannot ask the API server who you are (SelfSubjectReview: {exc.status}"
            f" {exc.reason}); commands and approvals carry your user name"
        ) from None
    if not user:
        raise SystemExit("coalmine: the API server gave no user name for these credentials")
    return user, groups


def _patch_annotations(
    kube: Kube, kind: str, namespace: str, name: str, values: dict[str, str | None]
) -> None:
    """Write annotations; a refusal (RBAC, the governance policy) exits with its message."""
    try:
        kube.merge_patch(kind, namespace, name, {"metadata": {"annotations": values}})
    except ApiException as exc:
        if exc.status not in (400, 403, 422):
            raise
        try:
            message = json.loads(exc.body or "{}").get("message") or exc.reason
        except ValueError:
            message = exc.reason
        raise SystemExit(f"coalmine: refused ({exc.status}): {message}") from None


def _command(args: argparse.Namespace) -> int:
    kube, _ = _load(args)
    token = uuid.uuid4().hex[:12]
    # Options ride in the token as words (coalmine.rollout.commands reads them).
    if args.command == "undo" and args.to_revision is not None:
        token = f"{token} revision={args.to_revision}"
    if args.command == "promote" and args.full:
        token = f"{token} full"
    token = with_author(token, _whoami(kube)[0])
    annotation = COMMAND_ANNOTATIONS[args.command]
    _patch_annotations(kube, "ModelDeployment", args.namespace, args.name, {annotation: token})
    print(
        f"{args.command} requested for {args.namespace}/{args.name} (token {token}); "
        f"follow it with: coalmine status {args.name} -n {args.namespace}"
    )
    return 0


def _approve(args: argparse.Namespace) -> int:
    kube = Kube()
    if kube.get("ModelVersion", args.namespace, args.model_version) is None:
        raise SystemExit(f"coalmine: modelversion {args.namespace}/{args.model_version} not found")
    user, groups = _whoami(kube)
    stated = list(dict.fromkeys(args.group or []))
    foreign = [g for g in stated if g not in groups]
    if foreign:
        raise SystemExit(
            f"coalmine: you ({user}) are not in group {', '.join(foreign)}; your groups:"
            f" {', '.join(groups) or 'none'}"
        )
    values: dict[str, str | None] = {
        APPROVED_BY_ANNOTATION: None if args.withdraw else user,
        APPROVED_GROUPS_ANNOTATION: None if args.withdraw or not stated else ",".join(stated),
    }
    _patch_annotations(kube, "ModelVersion", args.namespace, args.model_version, values)
    what = "approval withdrawn" if args.withdraw else f"approved by {user}"
    groups_note = f" (groups {', '.join(stated)})" if stated and not args.withdraw else ""
    print(f"modelversion {args.namespace}/{args.model_version}: {what}{groups_note}")
    return 0


def _completion(args: argparse.Namespace) -> int:
    print(completion.bash(build_parser()), end="")
    return 0


def build_parser(prog: str = "coalmine") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    op = sub.add_parser("operator", help="run the operator (uses KUBECONFIG or in-cluster config)")
    op.add_argument(
        "--namespace", "-n", action="append", help="watch only this namespace (repeatable)"
    )
    op.add_argument(
        "--liveness",
        default=None,
        help="serve kopf health checks at this URL, e.g. http://0.0.0.0:8080/healthz",
    )
    op.add_argument(
        "--metrics-port", type=int, default=0, help="serve Prometheus /metrics on this port"
    )
    op.add_argument(
        "--lease-namespace",
        default=None,
        help="elect a leader with a Lease in this namespace (default in a pod: its"
        " namespace; outside a cluster without it: no election, this process leads)",
    )
    op.add_argument("--lease-name", default="coalmine-operator", help="the Lease's name")
    op.add_argument(
        "--workers",
        type=int,
        default=WORKERS,
        help=f"reconciles at once, each in its own thread (default {WORKERS})",
    )
    op.add_argument("--verbose", "-v", action="store_true")
    op.set_defaults(func=_operator)

    def target(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("name", help="ModelDeployment name")
        p.add_argument("--namespace", "-n", default="default")
        return p

    target("status", "the rollout as a timeline: steps, weights, analysis, events").set_defaults(
        func=_status
    )
    target("history", "finished rollouts, newest last").set_defaults(func=_history)
    rep = target("report", "the current or last rollout as an HTML page and a PNG of it")
    rep.add_argument("--out", default=".", help="folder for NAME-revN.html and .png")
    rep.add_argument("--no-png", action="store_true", help="write only the HTML page")
    rep.set_defaults(func=_report)
    promote = target("promote", "skip the current pause or step")
    promote.add_argument("--full", action="store_true", help="skip every remaining step")
    promote.set_defaults(func=_command)
    target("abort", "roll the canary back now").set_defaults(func=_command)
    target("retry", "start again a rolled-back revision").set_defaults(func=_command)
    undo = target("undo", "roll back to a previous revision")
    undo.add_argument("--to-revision", type=int, default=None)
    undo.set_defaults(func=_command)
    approve = sub.add_parser(
        "approve", help="approve a ModelVersion for production traffic, in your own name"
    )
    approve.add_argument("model_version", metavar="NAME", help="ModelVersion name")
    approve.add_argument("--namespace", "-n", default="default")
    approve.add_argument(
        "--group",
        action="append",
        help="state one of your groups, for strategies with approverGroups (repeatable)",
    )
    approve.add_argument("--withdraw", action="store_true", help="remove the approval")
    approve.set_defaults(func=_approve)
    comp = sub.add_parser(
        "completion", help="print a shell completion script: source <(coalmine completion bash)"
    )
    comp.add_argument("shell", choices=["bash"])
    comp.set_defaults(func=_completion)
    return parser


def prog_name(argv0: str) -> str:
    """`kubectl coalmine` when run as the kubectl plugin (kubectl-coalmine), else `coalmine`."""
    return "kubectl coalmine" if Path(argv0).name == "kubectl-coalmine" else "coalmine"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(prog_name(sys.argv[0]))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
