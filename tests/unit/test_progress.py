"""Progress of long build steps: hack/lib/progress.sh (the scripts' side) and
tests/support/steps.run_step (the Python callers' side: the demo, the tests' fixtures).

A cold build cannot run here; fake steps stand in for it, and the cluster build runs
against a cache where every binary but the tiny `pause` is already present.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cluster import PermanentError, WaitTimeout, wait_for
from tests.support.steps import StepFailed, progress_text, run_step

REPO = Path(__file__).resolve().parents[2]
PROGRESS_SH = REPO / "hack" / "lib" / "progress.sh"


def bash(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; source {PROGRESS_SH}; {script}"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )


def test_a_step_is_one_line_with_the_time_elapsed() -> None:
    proc = bash('step "building kube-apiserver v1.34.4 (3/9)"')
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert re.fullmatch(r"==> building kube-apiserver v1\.34\.4 \(3/9\) \d+s\n", proc.stderr)


def test_elapsed_time_reads_in_minutes() -> None:
    proc = bash('PROGRESS_START=$((SECONDS - 130)); step "building etcd (1/2)"')
    assert proc.stderr.strip().endswith("(1/2) 2m10s")


def test_run_logged_keeps_the_output_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "ok.log"
    proc = bash(f"run_logged {log} bash -c 'echo compiling; echo more'")
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert log.read_text() == "compiling\nmore\n"


def test_run_logged_shows_the_tail_and_the_path_when_it_fails(tmp_path: Path) -> None:
    log = tmp_path / "fail.log"
    proc = bash(
        f"run_logged {log} bash -c 'seq 1 100; exit 3'; echo not reached",
        PROGRESS_TAIL_LINES="5",
    )
    assert proc.returncode == 3
    assert "not reached" not in proc.stdout
    assert f"error: bash failed (exit 3) after 0s; the last lines of its log {log}:" in proc.stderr
    assert proc.stderr.splitlines()[1:] == [f"    {n}" for n in range(96, 101)]


@pytest.mark.skipif(
    shutil.which("go", path=f"{os.environ['PATH']}:/usr/local/go/bin") is None, reason="needs go"
)
def test_the_cluster_build_counts_its_steps_and_says_when_all_is_cached(tmp_path: Path) -> None:
    versions = (REPO / "hack" / "localcluster" / "versions.env").read_text()
    kube = re.search(r"KUBE_VERSION=(\S+)", versions)
    assert kube is not None
    bin_dir = tmp_path / f"kubernetes-{kube.group(1)}" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
                 "kube-proxy", "kubectl", "etcd", "coredns", "metrics-server"):  # fmt: skip
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    env = {
        **os.environ,
        "COALMINE_CACHE": str(tmp_path),
        "PATH": f"{os.environ['PATH']}:/usr/local/go/bin",
    }
    build = [str(REPO / "hack" / "localcluster" / "build.sh")]
    first = subprocess.run(build, env=env, capture_output=True, text=True, check=True)
    lines = first.stderr.splitlines()
    assert re.fullmatch(r"==> building pause \S+ \(1/1\) \d+s", lines[0]), lines
    assert re.fullmatch(rf"==> built 1 binaries into {bin_dir} \d+s", lines[-1]), lines
    assert (bin_dir / "pause").exists()
    again = subprocess.run(build, env=env, capture_output=True, text=True, check=True)
    assert re.fullmatch(rf"==> all 10 binaries cached in {bin_dir} \d+s\n", again.stderr)


def test_run_step_streams_progress_lines_and_logs_everything(tmp_path: Path) -> None:
    said: list[tuple[float, str]] = []
    script = (
        "printf '\\033[1m==> building kube-apiserver (1/2)\\033[0m 0s\\n' >&2; echo go noise;"
        " sleep 1; echo '==> building kubectl (2/2) 1s'; echo /the/result"
    )
    log = tmp_path / "step.log"
    out = run_step(
        "fake build", ["bash", "-c", script], log=log, say=lambda s: said.append((time.time(), s))
    )
    assert [s for _, s in said] == [
        "  building kube-apiserver (1/2) 0s",
        "  building kubectl (2/2) 1s",
    ]
    assert said[1][0] - said[0][0] >= 0.9, "the first line came as it was printed, not at the end"
    assert out.splitlines()[-1] == "/the/result"
    assert "go noise" in log.read_text()


def test_run_step_failure_has_the_log_tail_and_path(tmp_path: Path) -> None:
    log = tmp_path / "bad.log"
    with pytest.raises(StepFailed) as err:
        run_step("fake build", ["bash", "-c", "seq 1 60; exit 2"], log=log, say=lambda _: None)
    message = str(err.value)
    assert message.startswith(f"fake build failed (exit 2); the last lines of {log}:")
    assert message.splitlines()[1:] == [str(n) for n in range(36, 61)]


def test_run_step_timeout_ends_the_whole_process_tree(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(StepFailed, match="took more than 1s"):
        run_step(
            "slow", ["bash", "-c", "sleep 30 & wait"], log=tmp_path / "s.log", timeout=1,
            say=lambda _: None,
        )  # fmt: skip
    assert time.monotonic() - started < 10


def test_progress_text() -> None:
    assert progress_text("\x1b[1m==> network\x1b[0m 3s\n") == "network 3s"
    assert progress_text("    info line") is None
    assert progress_text("go: downloading k8s.io/api v0.34.4") is None


def test_wait_for_stops_at_once_on_a_permanent_error() -> None:
    calls: list[int] = []

    def invalid() -> bool:
        calls.append(1)
        raise PermanentError("ModelVersion iris-v3 is Invalid: sha256 mismatch")

    started = time.monotonic()
    with pytest.raises(PermanentError, match="sha256 mismatch"):
        wait_for("iris-v3 to be validated", invalid, timeout=60)
    assert len(calls) == 1
    assert time.monotonic() - started < 1


def test_wait_for_retries_other_errors_until_its_timeout() -> None:
    def flaky() -> bool:
        raise ConnectionError("not yet")

    with pytest.raises(WaitTimeout, match=r"waiting for the Service.*not yet"):
        wait_for("the Service", flaky, timeout=0.3, interval=0.05)
    assert issubclass(WaitTimeout, AssertionError)  # what the tests have always caught
