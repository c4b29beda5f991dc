#!/usr/bin/env python3
"""Build a container image archive from a root filesystem, without a daemon.

The archive is both a docker-archive (``manifest.json``, read by ``docker load``)
and an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/...``,
read by ``ctr images import``), the same shape as ``docker save`` writes since
Docker 25. The config and the layers are stored once, as blobs, and both
indexes point at them.

The output is deterministic: entries sorted by name, every mtime set to 0 (or
to ``SOURCE_DATE_EPOCH`` when set), numeric owners copied from the rootfs with
no user or group names, hard links kept as links, device nodes, sockets and
FIFOs skipped (the runtime provides /dev). Extended attributes (file
capabilities, SELinux labels) are not copied.

Example::

    python3 hack/images/mkimage.py --rootfs ROOTFS --name coalmine/test:0.1.0 \\
        --output _out/images/test.tar --entrypoint '["/app"]' --user 65532
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    """A file destined for ``blobs/sha256/<digest>`` of the output archive."""

    path: Path
    digest: str  # hex sha256 of the stored bytes
    size: int


@dataclass(frozen=True)
class Layer:
    blob: Blob
    diff_id: str  # hex sha256 of the uncompressed tar
    gzipped: bool
    tar_size: int  # size of the uncompressed tar


class Sink(Protocol):
    def write(self, data: Any, /) -> int: ...


class HashingWriter(io.RawIOBase):
    """A write-only stream that hashes, counts and forwards what it is given."""

    def __init__(self, sink: Sink) -> None:
        super().__init__()
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.size += view.nbytes
        self.sink.write(view)
        return view.nbytes


def epoch() -> int:
    """The timestamp of every file and of the image: SOURCE_DATE_EPOCH or 0."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    try:
        return int(value)
    except ValueError:
        sys.exit(f"mkimage: SOURCE_DATE_EPOCH must be an integer, got {value!r}")


def rfc3339(timestamp: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def walk(root: Path, rel: str = "") -> Iterator[tuple[str, os.stat_result]]:
    """Yield (relative path, lstat) under root, depth first, sorted by name, root excluded."""
    with os.scandir(root / rel if rel else root) as it:
        names = sorted(entry.name for entry in it)
    for name in names:
        child = f"{rel}/{name}" if rel else name
        st = os.lstat(root / child)
        yield child, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk(root, child)


def tar_rootfs(root: Path, out: HashingWriter, mtime: int) -> dict[str, int]:
    """Write root as a tar stream to out; returns counts of what was written and skipped."""
    counts = {"files": 0, "dirs": 0, "symlinks": 0, "hardlinks": 0, "skipped": 0}
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel, st in walk(root):
            info = tarfile.TarInfo(rel)
            info.mode = stat.S_IMODE(st.st_mode)
            info.uid, info.gid = st.st_uid, st.st_gid
            info.uname = info.gname = ""
            info.mtime = mtime
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                info.type = tarfile.DIRTYPE
                counts["dirs"] += 1
                tar.addfile(info)
            elif stat.S_ISLNK(mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(root / rel)
                counts["symlinks"] += 1
                tar.addfile(info)
            elif stat.S_ISREG(mode):
                inode = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and inode in seen:
                    info.type = tarfile.LNKTYPE
                    info.linkname = seen[inode]
                    counts["hardlinks"] += 1
                    tar.addfile(info)
                    continue
                if st.st_nlink > 1:
                    seen[inode] = rel
                info.size = st.st_size
                with open(root / rel, "rb") as f:
                    tar.addfile(info, f)
                counts["files"] += 1
            else:  # devices, FIFOs, sockets: the runtime provides what is needed
                counts["skipped"] += 1
    return counts


def layer_from_rootfs(root: Path, workdir: Path, compress: bool) -> tuple[Layer, dict[str, int]]:
    path = workdir / "layer"
    with open(path, "wb") as raw:
        stored = HashingWriter(raw)
        if compress:
            with gzip.GzipFile(fileobj=stored, mode="wb", mtime=0, compresslevel=6) as gz:
                plain = HashingWriter(gz)
                counts = tar_rootfs(root, plain, epoch())
        else:
            plain = stored
            counts = tar_rootfs(root, plain, epoch())
    blob = Blob(path, stored.sha.hexdigest(), stored.size)
    return Layer(blob, plain.sha.hexdigest(), compress, plain.size), counts


def layer_from_tar(path: Path) -> Layer:
    """A prebuilt layer, stored as given (plain or gzip); its diff_id is computed."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    stored = file_digest(path, gzipped=False)
    plain, tar_size = file_digest(path, gzipped=True) if gzipped else stored
    blob = Blob(path, stored[0], stored[1])
    return Layer(blob, plain, gzipped, tar_size)


def file_digest(path: Path, gzipped: bool) -> tuple[str, int]:
    """Hex sha256 and size of a file's bytes (decompressed first when gzipped)."""
    sha, size = hashlib.sha256(), 0
    with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def json_blob(obj: object, workdir: Path, name: str) -> Blob:
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    path = workdir / name
    path.write_bytes(data)
    return Blob(path, hashlib.sha256(data).hexdigest(), len(data))


def normalize_ref(ref: str) -> str:
    """Docker's normalisation: a/x:1 -> docker.io/a/x:1, x -> docker.io/library/x:latest."""
    first, _, rest = ref.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        ref = f"docker.io/{ref}" if rest else f"docker.io/library/{ref}"
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        ref += ":latest"
    return ref


def short_ref(ref: str) -> str:
    """The form docker prints and puts in RepoTags: docker.io/library/x:1 -> x:1."""
    full = normalize_ref(ref)
    for prefix in ("docker.io/library/", "docker.io/"):
        if full.startswith(prefix):
            return full[len(prefix) :]
    return full


def image_config(args: argparse.Namespace, layers: list[Layer]) -> dict[str, Any]:
    created = rfc3339(epoch())
    env = list(args.env)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    config: dict[str, Any] = {"Env": env}
    if args.entrypoint is not None:
        config["Entrypoint"] = args.entrypoint
    if args.cmd is not None:
        config["Cmd"] = args.cmd
    if args.user:
        config["User"] = args.user
    if args.workdir:
        config["WorkingDir"] = args.workdir
    if args.expose:
        config["ExposedPorts"] = {p if "/" in p else f"{p}/tcp": {} for p in args.expose}
    if args.label:
        config["Labels"] = dict(kv.split("=", 1) for kv in args.label)
    return {
        "architecture": args.arch,
        "os": "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{x.diff_id}" for x in layers]},
        "history": [
            {"created": created, "created_by": "coalmine mkimage.py", "comment": f"layer {i}"}
            for i in range(len(layers))
        ],
    }


def add_file(tar: tarfile.TarFile, name: str, path: Path | None, data: bytes = b"") -> None:
    info = tarfile.TarInfo(name)
    info.mtime = epoch()
    info.mode = 0o644
    if path is None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        info.size = path.stat().st_size
        with open(path, "rb") as f:
            tar.addfile(info, f)


def add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = epoch()
    tar.addfile(info)


def dumps(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_archive(output: Path, ref: str, config: Blob, layers: list[Layer], arch: str) -> Blob:
    """Write the docker-archive + OCI layout; returns the manifest blob."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {
            "mediaType": MEDIA_CONFIG,
            "digest": f"sha256:{config.digest}",
            "size": config.size,
        },
        "layers": [
            {
                "mediaType": MEDIA_LAYER_GZIP if x.gzipped else MEDIA_LAYER,
                "digest": f"sha256:{x.blob.digest}",
                "size": x.blob.size,
            }
            for x in layers
        ],
    }
    manifest_data = dumps(manifest)
    manifest_digest = hashlib.sha256(manifest_data).hexdigest()
    full = normalize_ref(ref)
    last = full.rsplit("/", 1)[-1].split("@", 1)[0]
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": f"sha256:{manifest_digest}",
                "size": len(manifest_data),
                "platform": {"architecture": arch, "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": full,
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    docker_manifest = [
        {
            "Config": f"blobs/sha256/{config.digest}",
            "RepoTags": [short_ref(ref)],
            "Layers": [f"blobs/sha256/{x.blob.digest}" for x in layers],
        }
    ]
    blobs: dict[str, tuple[Path | None, bytes]] = {config.digest: (config.path, b"")}
    blobs[manifest_digest] = (None, manifest_data)
    for x in layers:
        blobs[x.blob.digest] = (x.blob.path, b"")

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    with (
        open(tmp, "wb") as raw,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        add_dir(tar, "blobs")
        add_dir(tar, "blobs/sha256")
        for digest in sorted(blobs):
            path, data = blobs[digest]
            add_file(tar, f"blobs/sha256/{digest}", path, data)
        add_file(tar, "index.json", None, dumps(index))
        add_file(tar, "manifest.json", None, dumps(docker_manifest))
        add_file(tar, "oci-layout", None, dumps({"imageLayoutVersion": "1.0.0"}))
    os.replace(tmp, output)
    return Blob(output, manifest_digest, len(manifest_data))


def json_list(value: str) -> list[str]:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from e
    if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
        raise argparse.ArgumentTypeError('expected a JSON list of strings, e.g. ["/app", "-v"]')
    return parsed


def numeric_user(value: str) -> str:
    """UID[:GID], numeric: the kubelet can check runAsNonRoot only against a number."""
    uid, _, gid = value.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a numeric UID[:GID], got {value!r}")
    return value


def key_value(value: str) -> str:
    if "=" not in value or value.startswith("="):
        raise argparse.ArgumentTypeError(f"expected K=V, got {value!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rootfs", type=Path, help="directory to pack as the top layer")
    p.add_argument(
        "--layer-tar",
        type=Path,
        action="append",
        default=[],
        help="prebuilt layer tar (plain or gzip), repeatable; below --rootfs, in the order given",
    )
    p.add_argument("--name", required=True, help="image reference, e.g. coalmine/serving:0.1.0")
    p.add_argument("--output", required=True, type=Path, help="archive to write (FILE.tar)")
    p.add_argument("--entrypoint", type=json_list, help='JSON list, e.g. ["/bin/app"]')
    p.add_argument("--cmd", type=json_list, help="JSON list of default arguments")
    p.add_argument(
        "--user", type=numeric_user, help="UID[:GID] (numeric, so no /etc/passwd lookup is needed)"
    )
    p.add_argument("--env", type=key_value, action="append", default=[], help="K=V, repeatable")
    p.add_argument("--workdir", help="working directory")
    p.add_argument("--expose", action="append", default=[], help="PORT[/PROTO], repeatable")
    p.add_argument("--label", type=key_value, action="append", default=[], help="K=V, repeatable")
    p.add_argument("--gzip", action="store_true", help="gzip the layer built from --rootfs")
    p.add_argument("--arch", default="amd64", help="image architecture (default amd64)")
    args = p.parse_args(argv)
    if args.rootfs is None and not args.layer_tar:
        p.error("give --rootfs DIR or at least one --layer-tar FILE")
    if args.rootfs is not None and not args.rootfs.is_dir():
        p.error(f"--rootfs {args.rootfs}: not a directory")
    for path in args.layer_tar:
        if not path.is_file():
            p.error(f"--layer-tar {path}: not a file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".mkimage-", dir=args.output.parent.resolve()))
    try:
        layers = [layer_from_tar(path) for path in args.layer_tar]
        if args.rootfs is not None:
            layer, counts = layer_from_rootfs(args.rootfs, work, args.gzip)
            layers.append(layer)
            summary = ", ".join(f"{v} {k}" for k, v in counts.items())
            print(f"mkimage: layer from {args.rootfs}: {summary}", file=sys.stderr)
        config = json_blob(image_config(args, layers), work, "config")
        manifest = write_archive(args.output, args.name, config, layers, args.arch)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    uncompressed = sum(x.tar_size for x in layers)
    print(
        f"mkimage: wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB, "
        f"layers {uncompressed / 1e6:.1f} MB uncompressed) as {normalize_ref(args.name)} "
        f"in {time.monotonic() - started:.1f}s",
        file=sys.stderr,
    )
    print(f"mkimage: image id sha256:{config.digest}", file=sys.stderr)
    print(f"mkimage: manifest sha256:{manifest.digest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
