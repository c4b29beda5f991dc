"""Run the operator as a process against the test cluster, and restart it at will."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.cluster import REPO, Cluster


class OperatorProcess:
    """`coalmine operator` in a child process; its log goes to a file for assertions."""

    def __init__(self, cluster: Cluster, log_dir: Path) -> None:
        self.cluster = cluster
        self.log_path = log_dir / "operator.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("ab")
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        self.proc = subprocess.Popen(
            # Only the tests' namespaces: other operators (e.g. a Helm-installed
            # one under test) may own other namespaces of the same cluster.
            [sys.executable, "-m", "coalmine.cli.main", "operator", "--namespace", "t-*"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: the harshest stop, nothing gets flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
