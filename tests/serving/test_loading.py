"""Artifact loading: every URI scheme, digest pinning, and refusals with a one-line reason."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import skops.io
from moto.server import ThreadedMotoServer

from tests.serving import server as srv
from tests.serving.conftest import Artifacts
from tests.serving.models import FailingModel

ROW = [[0.1] * 20]


def assert_refused(args: list[str], reason: str, env: dict[str, str] | None = None) -> None:
    code, stderr = srv.run_to_exit(args, env)
    assert code != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("coalmine-serve: ")
    assert reason in lines[0]


def assert_serves(server: srv.Server, artifacts: Artifacts, name: str = "lr") -> None:
    try:
        body = server.post(f"/v1/models/{name}:predict", {"instances": ROW}).json()
        assert body["predictions"] == artifacts.lr.predict(ROW).tolist()
    finally:
        server.stop()


def test_digest_mismatch_is_refused(artifacts: Artifacts) -> None:
    assert_refused(
        ["--name", "lr", "--uri", str(artifacts.lr_skops), "--sha256", "0" * 64],
        "sha256 mismatch: expected " + "0" * 64,
    )


def test_reason_goes_to_the_termination_log(artifacts: Artifacts, tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    log.write_text("")
    args = ["--name", "lr", "--uri", str(artifacts.lr_skops), "--sha256", "1" * 64]
    assert_refused(args, "sha256 mismatch", {"COALMINE_TERMINATION_LOG": str(log)})
    assert log.read_text().startswith("coalmine-serve: sha256 mismatch: expected " + "1" * 64)


def test_unpinned_pickle_is_refused(artifacts: Artifacts) -> None:
    assert_refused(
        ["--name", "lr", "--uri", str(artifacts.lr_joblib)],
        "refusing to load an unpinned joblib artifact",
    )


def test_missing_artifact_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope.skops"
    assert_refused(
        ["--name", "lr", "--uri", missing.as_uri()], f"artifact not found: {missing.as_uri()}"
    )


def test_untrusted_skops_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "custom.skops"
    skops.io.dump(FailingModel(), path)
    assert_refused(
        ["--name", "m", "--uri", str(path)], "untrusted types: tests.serving.models.FailingModel"
    )


def test_garbage_artifact_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.skops"
    path.write_bytes(b"not a zip file")
    assert_refused(["--name", "m", "--uri", str(path)], "cannot load the skops artifact")


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"x")
    assert_refused(["--name", "m", "--uri", str(path)], "pass --format")


def test_wrong_feature_count_in_reference_is_refused(artifacts: Artifacts) -> None:
    assert_refused(
        ["--name", "lr", "--uri", str(artifacts.lr_skops), "--reference", '{"features": []}'],
        "drift reference has 0 features; the model takes 20",
    )


def test_pinned_joblib_loads(artifacts: Artifacts) -> None:
    digest = "sha256:" + artifacts.sha256(artifacts.lr_joblib)
    server = srv.start(["--name", "lr", "--uri", str(artifacts.lr_joblib), "--sha256", digest])
    assert_serves(server, artifacts)


def test_pinned_skops_loads_from_env_settings(artifacts: Artifacts) -> None:
    env = {
        "COALMINE_NAME": "lr",
        "COALMINE_URI": artifacts.lr_skops.as_uri(),
        "COALMINE_SHA256": artifacts.sha256(artifacts.lr_skops),
    }
    assert_serves(srv.start([], env), artifacts)


def test_pvc_uri_resolves_under_the_mount_root(artifacts: Artifacts) -> None:
    root = artifacts.lr_skops.parent
    uri = f"pvc://models-claim/{artifacts.lr_skops.name}"
    assert_serves(srv.start(["--name", "lr", "--uri", uri, "--mount-root", str(root)]), artifacts)


def test_pvc_uri_cannot_escape_the_mount_root(artifacts: Artifacts) -> None:
    assert_refused(
        ["--name", "lr", "--uri", "pvc://claim/../etc/passwd", "--format", "skops"],
        "invalid pvc URI",
    )


@pytest.fixture
def http_root(artifacts: Artifacts) -> Iterator[str]:
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(artifacts.lr_skops.parent)
    )
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_uri(artifacts: Artifacts, http_root: str) -> None:
    uri = f"{http_root}/{artifacts.lr_skops.name}"
    digest = artifacts.sha256(artifacts.lr_skops)
    assert_serves(srv.start(["--name", "lr", "--uri", uri, "--sha256", digest]), artifacts)


def test_http_404_is_refused(http_root: str) -> None:
    assert_refused(["--name", "lr", "--uri", f"{http_root}/missing.skops"], "HTTP 404")


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    port = srv.free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    yield {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    moto.stop()


def test_s3_uri(artifacts: Artifacts, s3_env: dict[str, str]) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="lr/v7/model.skops", Body=artifacts.lr_skops.read_bytes())
    args = ["--name", "lr", "--uri", "s3://models/lr/v7/model.skops"]
    digest = artifacts.sha256(artifacts.lr_skops)
    assert_serves(srv.start([*args, "--sha256", digest], s3_env), artifacts)
    assert_refused(
        ["--name", "lr", "--uri", "s3://models/lr/v8/model.skops"], "artifact not found", s3_env
    )
