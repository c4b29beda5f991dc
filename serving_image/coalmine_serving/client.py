"""The little HTTP client side this server needs: another coalmine server's answers.

Both peers are coalmine servers (http.py), which always send a content-length, so a
response is its head and that many bytes: no framework, no chunked encoding.
"""

from __future__ import annotations

import asyncio


def response_head(head: bytes) -> tuple[int, int, bool]:
    """Status, content length and keep-alive of a response head; ValueError for anything
    else (such as a response without content-length)."""
    lines = head.split(b"\r\n")
    version, status_text = lines[0].split(b" ", 2)[:2]
    status = int(status_text)
    length, keep = None, version == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            keep = value.strip().lower() == b"keep-alive"
    if length is None:
        raise ValueError("response without content-length")
    return status, length, keep


async def post_once(
    host: str, port: int, path: bytes, body: bytes, header: bytes
) -> tuple[int, bytes]:
    """One JSON POST on a connection of its own, closed after; ``header`` is one extra
    ``name: value`` line. Raises OSError, ValueError or asyncio.IncompleteReadError."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n%s\r\n\r\n%s"
            % (path, host.encode(), len(body), header, body)
        )
        status, length, _ = response_head(await reader.readuntil(b"\r\n\r\n"))
        return status, await reader.readexactly(length)
    finally:
        writer.close()
