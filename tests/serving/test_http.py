"""HTTP/1.1 details clients rely on: keep-alive, pipelining, HTTP/1.0 close."""

from __future__ import annotations

import socket

from tests.serving import server as srv

READY = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"


def read_responses(conn: socket.socket, count: int) -> list[bytes]:
    data = b""
    while data.count(b"HTTP/1.1 ") < count or not data.endswith(b"}"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return [b"HTTP/1.1 " + part for part in data.split(b"HTTP/1.1 ")[1:]]


def test_pipelined_requests_are_answered_in_order(lr_server: srv.Server) -> None:
    body = b'{"instances": [[' + b", ".join([b"0.1"] * 20) + b"]]}"
    predict = b"POST /v1/models/lr:predict HTTP/1.1\r\nHost: x\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    missing = b"GET /v2/models/nope HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", lr_server.port), timeout=10) as conn:
        conn.sendall((predict + missing + READY) * 50)
        responses = read_responses(conn, 150)
    assert len(responses) == 150
    for i, response in enumerate(responses):
        expected = [b"HTTP/1.1 200", b"HTTP/1.1 404", b"HTTP/1.1 200"][i % 3]
        assert response.startswith(expected), (i, response)
    assert b'"predictions"' in responses[0]
    assert b'"ready":true' in responses[2]


def test_http_1_0_closes_the_connection(lr_server: srv.Server) -> None:
    with socket.create_connection(("127.0.0.1", lr_server.port), timeout=10) as conn:
        conn.sendall(b"GET /v2/health/live HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := conn.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in data
    assert data.endswith(b'{"live":true}')
