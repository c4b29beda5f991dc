"""`coalmine`: run the operator, or look at and steer rollouts."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence


def _operator(args: argparse.Namespace) -> int:
    import kopf

    import coalmine.handlers  # noqa: F401  (registers the handlers)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=not args.namespace,
            namespaces=args.namespace or [],
            liveness_endpoint=args.liveness,
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coalmine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    op = sub.add_parser("operator", help="run the operator (uses KUBECONFIG or in-cluster config)")
    op.add_argument(
        "--namespace", "-n", action="append", help="watch only this namespace (repeatable)"
    )
    op.add_argument(
        "--liveness", default=None, help="serve kopf health checks at this URL, e.g. http://0.0.0.0:8080/healthz"
    )
    op.add_argument("--verbose", "-v", action="store_true")
    op.set_defaults(func=_operator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
