"""Fetch an artifact, verify its digest, and only then deserialise it.

The digest is checked on the exact bytes that are deserialised, so nothing an
attacker swapped in is ever executed. Pickle-based formats run arbitrary code on
load; they are refused unless their digest is pinned or the operator opts in.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import botocore.exceptions
import joblib
import onnxruntime
import skops.io

from coalmine_serving.errors import LoadError

FORMATS_BY_SUFFIX = {
    ".skops": "skops",
    ".onnx": "onnx",
    ".joblib": "joblib",
    ".pkl": "pickle",
    ".pickle": "pickle",
}
TRUSTED_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.")
HTTP_TIMEOUT_SECONDS = 60.0


def fetch(uri: str, mount_root: str = "/mnt/models") -> bytes:
    """Read the artifact bytes behind ``uri``; raise LoadError with the reason."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    try:
        if scheme in ("", "file"):
            return Path(unquote(parts.path) if scheme else uri).read_bytes()
        if scheme == "pvc":
            return _pvc_path(parts.netloc, parts.path, mount_root).read_bytes()
        if scheme in ("http", "https"):
            with urllib.request.urlopen(uri, timeout=HTTP_TIMEOUT_SECONDS) as response:
                data: bytes = response.read()
                return data
        if scheme == "s3":
            return _fetch_s3(parts.netloc, parts.path.lstrip("/"))
    except LoadError:
        raise
    except FileNotFoundError:
        raise LoadError(f"artifact not found: {uri}") from None
    except urllib.error.HTTPError as exc:
        raise LoadError(f"cannot fetch {uri}: HTTP {exc.code}") from None
    except (OSError, urllib.error.URLError) as exc:
        raise LoadError(f"cannot fetch {uri}: {exc}") from None
    raise LoadError(f"unsupported URI scheme {scheme!r} in {uri}")


def _pvc_path(claim: str, path: str, mount_root: str) -> Path:
    """``pvc://CLAIM/PATH`` is PATH inside the claim, which is mounted at mount_root."""
    relative = PurePosixPath(unquote(path).lstrip("/"))
    if not claim or ".." in relative.parts or not relative.parts:
        raise LoadError(f"invalid pvc URI: pvc://{claim}{path}")
    return Path(mount_root, relative)


def _fetch_s3(bucket: str, key: str) -> bytes:
    if not bucket or not key:
        raise LoadError(f"invalid s3 URI: s3://{bucket}/{key}")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    client = boto3.client("s3", endpoint_url=endpoint or None)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        data: bytes = body.read()
        return data
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise LoadError(f"artifact not found: s3://{bucket}/{key}") from None
        raise LoadError(f"cannot fetch s3://{bucket}/{key}: {code}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise LoadError(f"cannot fetch s3://{bucket}/{key}: {exc}") from None


def verify_digest(data: bytes, expected: str | None) -> None:
    """Compare the sha256 of data with the pinned hex digest (``sha256:`` prefix allowed)."""
    if expected is None:
        return
    want = expected.strip().lower().removeprefix("sha256:")
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise LoadError(f"sha256 mismatch: expected {want}, artifact has {got}")


def detect_format(uri: str, explicit: str | None) -> str:
    """The --format flag, else the artifact's file extension."""
    if explicit:
        return explicit
    suffix = PurePosixPath(urlsplit(uri).path).suffix.lower()
    try:
        return FORMATS_BY_SUFFIX[suffix]
    except KeyError:
        raise LoadError(f"cannot tell the format of {uri}; pass --format") from None


def deserialise(data: bytes, fmt: str, *, pinned: bool, allow_unsafe_pickle: bool) -> Any:
    """Turn verified bytes into a model object, refusing untrusted content."""
    if fmt == "skops":
        return _load_skops(data)
    if fmt == "onnx":
        return _load_onnx(data)
    if fmt in ("joblib", "pickle"):
        _refuse_unpinned_pickle(fmt, pinned=pinned, allow_unsafe_pickle=allow_unsafe_pickle)
        try:
            if fmt == "joblib":
                return joblib.load(io.BytesIO(data))
            return pickle.loads(data)
        except Exception as exc:
            raise LoadError(f"cannot unpickle the {fmt} artifact: {exc}") from None
    raise LoadError(f"unsupported format {fmt!r}")


def _refuse_unpinned_pickle(fmt: str, *, pinned: bool, allow_unsafe_pickle: bool) -> None:
    """Unpickling runs arbitrary code: only a pinned digest or an explicit opt-in allow it."""
    if fmt in ("joblib", "pickle") and not (pinned or allow_unsafe_pickle):
        raise LoadError(
            f"refusing to load an unpinned {fmt} artifact: "
            "pin it with --sha256 or pass --allow-unsafe-pickle"
        )


def _load_skops(data: bytes) -> Any:
    try:
        untrusted = skops.io.get_untrusted_types(data=data)
        refused = [t for t in untrusted if not t.startswith(TRUSTED_MODULE_PREFIXES)]
        if refused:
            raise LoadError("skops artifact holds untrusted types: " + ", ".join(sorted(refused)))
        return skops.io.loads(data, trusted=untrusted)
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(f"cannot load the skops artifact: {exc}") from None


def _load_onnx(data: bytes) -> Any:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise LoadError(f"cannot load the onnx artifact: {exc}") from None


def load_artifact(
    uri: str,
    *,
    sha256: str | None,
    fmt: str | None,
    allow_unsafe_pickle: bool,
    mount_root: str = "/mnt/models",
) -> tuple[Any, str]:
    """Fetch, verify and deserialise; return the object and its format."""
    resolved = detect_format(uri, fmt)
    pinned = sha256 is not None
    _refuse_unpinned_pickle(resolved, pinned=pinned, allow_unsafe_pickle=allow_unsafe_pickle)
    data = fetch(uri, mount_root)
    verify_digest(data, sha256)
    return deserialise(
        data, resolved, pinned=pinned, allow_unsafe_pickle=allow_unsafe_pickle
    ), resolved
