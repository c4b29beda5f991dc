"""The checked-in gRPC modules are what ``make protos`` makes of inference.proto today."""

from __future__ import annotations

from pathlib import Path

from coalmine_serving.oip import protogen


def test_generated_modules_are_fresh(tmp_path: Path) -> None:
    fresh = protogen.generate(tmp_path)
    stale = [
        path.name
        for path in fresh
        if path.read_bytes() != (protogen.ROOT / protogen.PROTO.parent / path.name).read_bytes()
    ]
    assert len(fresh) == len(protogen.GENERATED)
    assert stale == [], f"stale generated files {stale}: run `make protos` and commit them"
