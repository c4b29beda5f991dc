"""A minimal HTTP/1.1 server: asyncio Protocol + httptools, keep-alive, no framework.

Each connection handles one request at a time in arrival order (pipelined
requests queue behind it), which keeps responses ordered without a task per
request. Handlers answer through a callback, synchronously or later, so the
inference path never creates a coroutine.

Under overload a refusal must cost far less than an answer, or refusing alone
fills the core (issue 15). So a ``Gate`` is asked as soon as a request's headers
are in: when it refuses, the body is parsed past as it arrives, never kept or
joined, and the 503 goes out (and is counted) when the request ends, without a
handler call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import httptools
import orjson

from coalmine_serving.errors import Overloaded


class Respond(Protocol):
    """Answer a request; ``json_length`` sends Inference-Header-Content-Length (binary data),
    ``retry_after`` a Retry-After in seconds (a refusal under overload)."""

    def __call__(
        self,
        status: int,
        body: bytes,
        content_type: bytes,
        json_length: int | None = None,
        retry_after: int | None = None,
    ) -> None: ...


Handler = Callable[["Request", Respond], None]


class Gate(Protocol):
    """Refuses requests from their headers alone (the model server's queueing budget)."""

    def refusal(self, method: bytes, path: bytes) -> Overloaded | None:
        """A refusal, or None to keep the body and hand the request on."""
        ...

    def refused(self, path: bytes, mirrored: bool, status: int) -> None:
        """Count a refusal once it was written."""
        ...


REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    413: b"Payload Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}
JSON = b"application/json"
OCTETS = b"application/octet-stream"
INFERENCE_HEADER = b"inference-header-content-length"
MIRROR_HEADER = b"coalmine-mirror"
"""Marks a request a stable pod mirrored (mirror.py), so the canary counts it apart."""
FORWARDED_HEADER = b"coalmine-feedback-forwarded"
"""Marks feedback another process sent on (feedback_endpoint.py): it is never sent again."""
MAX_PIPELINED = 32  # queued requests per connection before reading pauses


@dataclass(slots=True)
class Request:
    method: bytes
    path: bytes
    body: bytes
    keep_alive: bool
    inference_header: bytes | None = None
    """Inference-Header-Content-Length: the body's JSON part ends there (binary data)."""
    mirrored: bool = False
    """Sent by a stable pod's mirror (mirror.HEADER), not by a client."""
    forwarded: bool = False
    """Feedback sent on by another serving process (FORWARDED_HEADER)."""
    local: str = ""
    """The local address of the connection (the pod IP behind a Service): ids name it."""
    on_lost: Callable[[], object] | None = None
    """Set by the handler while it computes: called if the client goes before the answer."""


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


class Connections:
    """The open connections, so shutdown can close idle ones and wait for busy ones."""

    def __init__(self) -> None:
        self.open: set[HttpProtocol] = set()
        self.closing = False

    def close_idle(self) -> None:
        self.closing = True
        for conn in list(self.open):
            if not conn.busy:
                conn.close()


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    __slots__ = (
        "_body",
        "_conns",
        "_current",
        "_forwarded",
        "_gate",
        "_handler",
        "_inference_header",
        "_local",
        "_max_body",
        "_mirrored",
        "_parser",
        "_pending",
        "_refusal",
        "_size",
        "_transport",
        "_url",
        "busy",
    )

    def __init__(
        self,
        handler: Handler,
        connections: Connections,
        max_body_bytes: int,
        gate: Gate | None = None,
    ) -> None:
        self._handler = handler
        self._gate = gate
        self._refusal: Overloaded | None = None
        self._conns = connections
        self._max_body = max_body_bytes
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._size = 0
        self._inference_header: bytes | None = None
        self._mirrored = False
        self._forwarded = False
        self._local = ""
        self._pending: list[Request] = []
        self._current: Request | None = None
        self.busy = False

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sockname = transport.get_extra_info("sockname")
        self._local = sockname[0] if isinstance(sockname, tuple) else ""
        self._conns.open.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._conns.open.discard(self)
        self._transport = None
        self._abandon()

    def eof_received(self) -> None:
        """The client closed its side: it will not read an answer, so none is computed
        (the transport then closes, as asyncio's default)."""
        self._abandon()

    def data_received(self, data: bytes) -> None:
        if self._transport is None:
            return  # already rejected; drop what is still arriving
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            if self._transport is not None:
                self._fail(400, f"malformed HTTP request: {exc}")

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []
        self._size = 0
        self._inference_header = None
        self._mirrored = False
        self._forwarded = False
        self._refusal = None

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"content-length" and value.isdigit() and int(value) > self._max_body:
            self._too_large()
        elif lower == INFERENCE_HEADER:
            self._inference_header = value
        elif lower == MIRROR_HEADER:
            self._mirrored = True
        elif lower == FORWARDED_HEADER:
            self._forwarded = True

    def on_headers_complete(self) -> None:
        # Only with nothing in hand or queued: answers go out in the order requests came.
        if self._gate is not None and not self.busy and not self._pending:
            path = self._url.split(b"?", 1)[0]
            self._refusal = self._gate.refusal(self._parser.get_method(), path)

    def on_body(self, body: bytes) -> None:
        if self._refusal is not None:
            return
        self._body.append(body)
        self._size += len(body)
        if self._size > self._max_body:
            self._too_large()

    def on_message_complete(self) -> None:
        refusal = self._refusal
        if refusal is not None and self._gate is not None:
            self._refusal = None
            self._write(
                refusal.status,
                error_body(refusal.message),
                JSON,
                self._parser.should_keep_alive(),
                retry_after=refusal.retry_after,
            )
            self._gate.refused(self._url.split(b"?", 1)[0], self._mirrored, refusal.status)
            return
        path = self._url.split(b"?", 1)[0]
        request = Request(
            self._parser.get_method(),
            path,
            b"".join(self._body),
            self._parser.should_keep_alive(),
            self._inference_header,
            self._mirrored,
            self._forwarded,
            self._local,
        )
        if self.busy or self._pending:  # queued ones go first (_dispatch_next)
            self._pending.append(request)
            if len(self._pending) >= MAX_PIPELINED and self._transport is not None:
                self._transport.pause_reading()  # back-pressure on a pipelining client
        else:
            self._dispatch(request)

    # internals
    def _abandon(self) -> None:
        """Nobody will read the answer to the request in hand: do not compute it."""
        current, self._current = self._current, None
        if current is not None and current.on_lost is not None:
            current.on_lost()

    def _too_large(self) -> None:
        self._fail(413, f"request body larger than {self._max_body} bytes (--max-body-bytes)")
        raise httptools.HttpParserError("body too large")  # stops the parser

    def _fail(self, status: int, message: str) -> None:
        self._write(status, error_body(message), JSON, keep_alive=False)

    def _dispatch(self, request: Request) -> None:
        self.busy = True
        self._current = request
        keep_alive = request.keep_alive

        def respond(
            status: int,
            body: bytes,
            content_type: bytes,
            json_length: int | None = None,
            retry_after: int | None = None,
        ) -> None:
            self._current = None
            self._write(status, body, content_type, keep_alive, json_length, retry_after)
            self.busy = False
            if self._pending and self._transport is not None:
                # Next loop turn, not recursion: a long pipeline must not grow the stack.
                asyncio.get_running_loop().call_soon(self._dispatch_next)
            elif self._conns.closing:
                self.close()

        self._handler(request, respond)

    def _dispatch_next(self) -> None:
        if self._pending and self._transport is not None and not self.busy:
            if len(self._pending) == MAX_PIPELINED:
                self._transport.resume_reading()
            self._dispatch(self._pending.pop(0))

    def _write(
        self,
        status: int,
        body: bytes,
        content_type: bytes,
        keep_alive: bool,
        json_length: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        transport = self._transport
        if transport is None:
            return
        keep_alive = keep_alive and not self._conns.closing
        extra = b"" if keep_alive else b"connection: close\r\n"
        if json_length is not None:
            extra += b"%s: %d\r\n" % (INFERENCE_HEADER, json_length)
        if retry_after is not None:
            extra += b"retry-after: %d\r\n" % retry_after
        transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n%s"
            % (status, REASONS.get(status, b"Unknown"), content_type, len(body), extra, body)
        )
        if not keep_alive:
            self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            self._conns.open.discard(self)
