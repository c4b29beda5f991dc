"""A read-only Git server over smart HTTP, for Flux's source-controller in the test cluster.

source-controller clones with go-git, which speaks only the smart HTTP
protocol (``info/refs?service=git-upload-pack``, then a POST to
``git-upload-pack``), not the dumb one a static file server would give. Git's
own ``git http-backend`` is that protocol's server side, as a CGI program: this
module runs it once a request behind the standard library's HTTP server. No
build, no image, nothing but the ``git`` the machine already has.

The server runs on the host. Pods reach the host at the local cluster's bridge
address (hack/localcluster/lib.sh: NODE_IP, 10.244.0.1), so a test binds it
there and points a GitRepository at ``http://10.244.0.1:PORT/NAME``. Every
repository under ``root`` is served, a bare ``NAME.git`` or a work tree's
``NAME/.git``; a commit made in it is what the next fetch sees. Pushes over
HTTP are refused (no ``REMOTE_USER``): a test commits in the work tree, or
pushes to the bare repository by its path.

Run by hand: ``python3 -m tests.support.gitserver ROOT [--host H] [--port P]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

BACKEND_TIMEOUT = 60.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._backend()

    def do_POST(self) -> None:
        self._backend()

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _backend(self) -> None:
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            # the repositories are the test's own, whoever owns the files
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "safe.directory",
            "GIT_CONFIG_VALUE_0": "*",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": query,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            # protocol v2 for the git CLI; go-git asks for none and gets v0
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        body = self._body()
        env["CONTENT_LENGTH"] = str(len(body))
        try:
            done = subprocess.run(
                ["git", "http-backend"],
                input=body,
                env=env,
                capture_output=True,
                timeout=BACKEND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.send_error(504, "git http-backend timed out")
            return
        # its stderr carries pack-objects' progress too: loud only on a failure
        level = logging.DEBUG if done.returncode == 0 else logging.WARNING
        if done.stderr:
            log.log(level, "git http-backend: %s", done.stderr.decode(errors="replace").strip())
        head, sep, payload = done.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, payload = done.stdout.partition(b"\n\n")
        if not sep:
            self.send_error(502, "git http-backend gave no CGI headers")
            return
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name.lower() != "content-length":
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], root: Path) -> None:
        super().__init__(address, _Handler)
        self.root = root


class GitServer:
    """Serves the Git repositories under ``root`` on ``host:port`` (0: any free port)."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = root.resolve()
        self._server = _Server((host, port), self.root)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="git-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def url(self, repository: str) -> str:
        """The clone URL of ``root/repository``."""
        host, port = self.address
        return f"http://{host}:{port}/{repository}"

    def start(self) -> GitServer:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the command line's way)."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def serving(root: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[GitServer]:
    """A started GitServer, stopped on the way out."""
    with GitServer(root, host, port) as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="directory of the repositories to serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    server = GitServer(args.root, args.host, args.port)
    host, port = server.address
    print(f"serving {server.root} on http://{host}:{port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
