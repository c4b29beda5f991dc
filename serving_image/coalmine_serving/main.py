"""``coalmine-serve``: the console entry point."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from coalmine_serving.config import parse_settings
from coalmine_serving.server import run


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags (over ``COALMINE_*`` variables), then serve until SIGTERM."""
    settings = parse_settings(sys.argv[1:] if argv is None else argv)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
