"""Long build steps (cluster, helm, images, training) run from Python.

A step's whole output goes to a log file; its progress lines (the `==> ...` lines that the
scripts under hack/ print, one per step with the time elapsed) are handed to `say` as they
come, so a caller shows how far a ten-minute build is instead of going silent. When the
step fails, `StepFailed` carries the last lines of the log and the log's path.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOGS = REPO / "_out" / "logs"
PROGRESS = "==> "
TAIL_LINES = 25
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class StepFailed(RuntimeError):
    """A build step exited non-zero or ran out of time; the message has its log's tail."""


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def progress_text(line: str) -> str | None:
    """The progress message of an output line (`==> building etcd (1/3) 4s`), else None."""
    clean = _ANSI.sub("", line).rstrip()
    return clean.removeprefix(PROGRESS) if clean.startswith(PROGRESS) else None


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_step(
    what: str,
    cmd: Sequence[str],
    *,
    log: Path,
    say: Callable[[str], None] = to_stderr,
    timeout: float = 3600,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
) -> str:
    """Run `cmd`, its output to `log`, its progress lines to `say`; return the output."""
    log.parent.mkdir(parents=True, exist_ok=True)
    expired = threading.Event()
    with log.open("w") as out:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,  # a timeout ends the whole tree (make, go, pip ...)
        )

        def expire() -> None:
            expired.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                out.flush()
                text = progress_text(line)
                if text is not None:
                    say(f"  {text}")
            code = proc.wait()
        finally:
            timer.cancel()
    if expired.is_set():
        raise StepFailed(
            f"{what} took more than {timeout:.0f}s; the last lines of {log}:\n{tail(log)}"
        )
    if code != 0:
        raise StepFailed(f"{what} failed (exit {code}); the last lines of {log}:\n{tail(log)}")
    return log.read_text(errors="replace")
