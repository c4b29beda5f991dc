"""Generate the Python modules and type stubs of ``inference.proto`` (grpcio-tools, dev only).

Run ``python -m coalmine_serving.oip.protogen`` (``make protos``) after changing
the proto; the generated files are checked in, so the image needs no compiler.
A unit test regenerates them into a temporary folder and fails when they differ.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
"""The folder that holds the ``coalmine_serving`` package: protoc's include path."""
PROTO = Path("coalmine_serving/oip/inference.proto")
GENERATED = ("inference_pb2.py", "inference_pb2.pyi", "inference_pb2_grpc.py",
             "inference_pb2_grpc.pyi")  # fmt: skip


def generate(out: Path) -> list[Path]:
    """Write the generated files under ``out`` (mirroring the package path); return them."""
    mypy = shutil.which("protoc-gen-mypy", path=str(Path(sys.executable).parent))
    mypy_grpc = shutil.which("protoc-gen-mypy_grpc", path=str(Path(sys.executable).parent))
    if mypy is None or mypy_grpc is None:
        raise SystemExit("mypy-protobuf's protoc plugins are not installed beside this python")
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"--proto_path={ROOT}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy={mypy}",
        f"--plugin=protoc-gen-mypy_grpc={mypy_grpc}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        str(ROOT / PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {PROTO}")
    return [out / PROTO.parent / name for name in GENERATED]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", nargs="?", type=Path, default=ROOT, help="default: in place")
    for path in generate(p.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
