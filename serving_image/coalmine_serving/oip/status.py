"""The gRPC status of each HTTP status the REST side answers with, so both fail alike.

A row limit (413 over REST) is RESOURCE_EXHAUSTED, the code gRPC itself gives a
message above the size limit: one code for "too big", whichever limit it hit.
"""

from __future__ import annotations

import grpc

CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def code(status: int) -> grpc.StatusCode:
    """The gRPC code for an HTTP status; INTERNAL for any other server error."""
    return CODES.get(status, grpc.StatusCode.INTERNAL)
