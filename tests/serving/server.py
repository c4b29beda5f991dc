"""Start ``coalmine-serve`` as a real process on a free loopback port and talk to it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.support.cluster import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different free loopback ports (held open together while they are chosen)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COALMINE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "coalmine_serving.main", *args]


@dataclass
class Server:
    """A running server process; ``url`` is its base URL, ``grpc_target`` its gRPC address."""

    process: subprocess.Popen[str]
    port: int
    grpc_port: int
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.url + path, timeout=10)

    def post(self, path: str, body: Any = None, *, data: bytes | None = None) -> requests.Response:
        if data is None:
            return self.session.post(self.url + path, json=body, timeout=10)
        return self.session.post(self.url + path, data=data, timeout=10)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.stderr()}")
            try:
                if requests.get(self.url + "/v2/health/ready", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not ready within {timeout}s")

    def stderr(self) -> str:
        if self.process.poll() is None:
            return ""
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def stop(self) -> None:
        self.session.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    drain_seconds: float = 0,
    grpc: bool = True,
) -> Server:
    """Start a server with ``args`` (plus a free --port and, unless not ``grpc``, a free
    --grpc-port) and wait until it is ready."""
    port, grpc_port = free_ports(2)
    if not grpc:
        grpc_port = 0
    process = subprocess.Popen(
        command(
            [
                *args,
                "--port",
                str(port),
                "--grpc-port",
                str(grpc_port),
                "--host",
                "127.0.0.1",
                "--drain-seconds",
                str(drain_seconds),
            ]
        ),
        env=server_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Server(process, port, grpc_port)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def run_to_exit(args: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run a server expected to refuse to start; return its exit code and stderr."""
    result = subprocess.run(
        command(["--port", str(free_port()), "--grpc-port", "0", "--host", "127.0.0.1", *args]),
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stderr


def eventually(check: Callable[[], bool], what: str, deadline: float = 20.0) -> None:
    """Poll a local server (every 50 ms, not the cluster's 0.5 s) until `check` holds."""
    wait_for(what, check, timeout=deadline, interval=0.05)
