"""The test-http image's Go tests (its routes, the in-cluster load generator), run here so
that CI runs them: the e2e tests trust its counts of answers, codes and latencies."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support.cluster import REPO

PATH = f"{os.environ['PATH']}:/usr/local/go/bin"


@pytest.mark.skipif(shutil.which("go", path=PATH) is None, reason="needs go (Debian golang)")
def test_the_load_generator_and_routes_pass_their_go_tests() -> None:
    proc = subprocess.run(
        ["go", "test", "-count=1", "./..."],
        check=False,
        cwd=REPO / "hack" / "images" / "test-http",
        env={**os.environ, "PATH": PATH, "GOFLAGS": "-mod=mod"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok" in proc.stdout
