"""The early refusal (http.Gate): decided from the headers, the body skipped, framing kept.

A recording transport stands in for the socket: what is tested is the parser's
bookkeeping, that a refused request's body is never handed on or kept, and that the
requests after it on the same keep-alive connection are read whole.
"""

from __future__ import annotations

import asyncio

import pytest

from coalmine_serving.errors import Overloaded
from coalmine_serving.http import Connections, HttpProtocol, Request, Respond


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 8080)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def post(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path,
        len(body),
        extra,
        body,
    )


class Server:
    """One connection whose gate refuses while ``overloaded`` and whose handler echoes the
    body, or (``deferred``) keeps the answer's callback for the test to call."""

    def __init__(self) -> None:
        self.overloaded = True
        self.deferred: list[Respond] | None = None
        self.asked: list[tuple[bytes, bytes]] = []
        self.counted: list[tuple[bytes, bool, int]] = []
        self.handled: list[Request] = []
        self.transport = Transport()
        self.conn = HttpProtocol(self.handle, Connections(), 1_000_000, self)
        self.conn.connection_made(self.transport)  # type: ignore[arg-type]

    def refusal(self, method: bytes, path: bytes) -> Overloaded | None:
        self.asked.append((method, path))
        return Overloaded("overloaded: try later", retry_after=3) if self.overloaded else None

    def refused(self, path: bytes, mirrored: bool, status: int) -> None:
        self.counted.append((path, mirrored, status))

    def handle(self, request: Request, respond: Respond) -> None:
        self.handled.append(request)
        if self.deferred is not None:
            self.deferred.append(respond)
        else:
            respond(200, request.body, b"text/plain")


@pytest.fixture
def server() -> Server:
    return Server()


def test_a_refused_request_is_answered_503_without_its_body_reaching_the_handler(
    server: Server,
) -> None:
    server.conn.data_received(post(b"/v2/models/m/infer?x=1", b"x" * 50_000))
    assert server.asked == [(b"POST", b"/v2/models/m/infer")]
    assert server.handled == []
    assert server.counted == [(b"/v2/models/m/infer", False, 503)]
    [answer] = server.transport.written
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"retry-after: 3\r\n" in answer
    assert answer.endswith(b'{"error":"overloaded: try later"}')
    assert not server.transport.closed, "a refusal keeps the connection"


def test_the_next_request_on_the_connection_is_read_whole(server: Server) -> None:
    refused = post(b"/v2/models/m/infer", b"a" * 30_000, b"coalmine-mirror: 1\r\n")
    server.conn.data_received(refused[:100])  # the body arrives in pieces
    server.conn.data_received(refused[100:20_000])
    server.overloaded = False  # the queue drained while the body was arriving
    server.conn.data_received(refused[20_000:] + post(b"/v2/models/m/infer", b"second"))
    assert [r.body for r in server.handled] == [b"second"]
    assert server.counted == [(b"/v2/models/m/infer", True, 503)], "counted as mirrored"
    first, second = server.transport.written
    assert first.startswith(b"HTTP/1.1 503")
    assert second.startswith(b"HTTP/1.1 200")
    assert second.endswith(b"second")


def test_a_refusal_to_a_client_closing_the_connection_closes_it(server: Server) -> None:
    server.conn.data_received(post(b"/v2/models/m/infer", b"{}", b"Connection: close\r\n"))
    [answer] = server.transport.written
    assert b"connection: close\r\n" in answer
    assert server.transport.closed


def test_a_pipelined_request_behind_a_busy_one_is_not_gated() -> None:
    """Its answer must follow the one in hand, so the handler decides when its turn comes."""

    async def run() -> list[bytes]:
        server, later = Server(), list[Respond]()
        server.overloaded, server.deferred = False, later
        server.conn.data_received(post(b"/a", b"1"))
        server.overloaded = True
        server.conn.data_received(post(b"/b", b"2"))
        assert len(server.asked) == 1, "/b arrived while /a was in hand: not gated"
        later[0](200, b"one", b"text/plain")
        await asyncio.sleep(0)  # the next pipelined request is dispatched a loop turn later
        return [r.path for r in server.handled]

    assert asyncio.run(run()) == [b"/a", b"/b"]


def test_a_request_arriving_while_one_is_still_queued_waits_its_turn() -> None:
    """A answered, B queued for the next loop turn, C read before that turn: C must neither
    be refused ahead of B nor handled before it, or a pipelining client pairs answers with
    the wrong requests."""

    async def run(overloaded: bool) -> tuple[list[bytes], list[bytes]]:
        server, later = Server(), list[Respond]()
        server.overloaded, server.deferred = False, later
        server.conn.data_received(post(b"/a", b"1") + post(b"/b", b"2"))
        later.pop()(200, b"A", b"text/plain")  # B now waits for the next loop turn
        server.overloaded = overloaded
        server.conn.data_received(post(b"/c", b"3"))
        for _ in range(3):
            await asyncio.sleep(0)
            while later:
                later.pop()(200, server.handled[-1].path, b"text/plain")
        return [r.path for r in server.handled], [
            w.split(b"\r\n")[0] for w in server.transport.written
        ]

    handled, written = asyncio.run(run(overloaded=False))
    assert handled == [b"/a", b"/b", b"/c"]
    handled, written = asyncio.run(run(overloaded=True))
    assert handled == [b"/a", b"/b", b"/c"], "C was queued behind B: the handler decides"
    assert all(line.startswith(b"HTTP/1.1 200") for line in written), written
