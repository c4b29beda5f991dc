"""A peer's client library in a virtualenv of its own, to build requests the way it does.

MLServer and KServe pin dependencies that clash with ours (and Triton's gRPC
client its own protobuf), so they never join the test venv: each is installed
once under the Coalmine cache, like the benchmark's peers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CACHE = Path.home() / ".cache" / "coalmine" / "test-venvs"
INSTALL_TIMEOUT = 1200
MLSERVER = ("mlserver-1.7.1", ["mlserver==1.7.1"])
TRITON = ("tritonclient-2.73.0", ["tritonclient[http]==2.73.0"])
TRITON_GRPC = ("tritonclient-grpc-2.73.0", ["tritonclient[grpc]==2.73.0"])
KSERVE = ("kserve-0.21.0", ["kserve==0.21.0"])


def python_with(name: str, requirements: list[str]) -> Path:
    """The python of venv ``name`` holding ``requirements``; skip when pip cannot install."""
    venv = CACHE / name
    python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    wanted = "\n".join(requirements)
    if stamp.exists() and stamp.read_text() == wanted:
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *requirements],
            check=True,
            timeout=INSTALL_TIMEOUT,
            capture_output=True,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot install {' '.join(requirements)} into {venv}: {exc}")
    stamp.write_text(wanted)
    return python


def run(python: Path, script: str, *args: str, stdin: str) -> str:
    """Run ``script`` with a peer's python; its stdout, or the test fails with its stderr."""
    done = subprocess.run(
        [str(python), "-c", script, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
