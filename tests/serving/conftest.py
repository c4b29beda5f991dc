"""Session fixtures: tiny models written as artifacts, and servers serving them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import numpy.typing as npt
import pytest
import skops.io
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from coalmine_serving.drift import reference_from_data
from tests.serving import server as srv
from tests.serving.models import FailingModel
from tests.serving.pipelines import SIGNATURE, frame

N_FEATURES = 20


@dataclass(frozen=True)
class Artifacts:
    x: npt.NDArray[np.float64]
    lr: LogisticRegression
    rf: RandomForestClassifier
    lr_skops: Path
    rf_skops: Path
    reg_skops: Path
    reg: LinearRegression
    lr_joblib: Path
    failing_joblib: Path
    lr_onnx: Path
    reference: Path

    @staticmethod
    def sha256(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    root = tmp_path_factory.mktemp("artifacts")
    x, y = make_classification(n_samples=600, n_features=N_FEATURES, random_state=0)
    lr = LogisticRegression(max_iter=1000).fit(x, y)
    rf = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(x, y)
    xr, yr = make_regression(n_samples=200, n_features=4, random_state=0)
    reg = LinearRegression().fit(xr, yr)
    paths = {name: root / name for name in ("lr.skops", "rf.skops", "reg.skops")}
    skops.io.dump(lr, paths["lr.skops"])
    skops.io.dump(rf, paths["rf.skops"])
    skops.io.dump(reg, paths["reg.skops"])
    joblib.dump(lr, root / "lr.joblib")
    joblib.dump(FailingModel(), root / "failing.joblib")
    onnx = to_onnx(lr, x[:1].astype(np.float32), options={"zipmap": False})
    (root / "lr.onnx").write_bytes(onnx.SerializeToString())
    (root / "reference.json").write_text(json.dumps(reference_from_data(x)))
    return Artifacts(
        x=x,
        lr=lr,
        rf=rf,
        reg=reg,
        lr_skops=paths["lr.skops"],
        rf_skops=paths["rf.skops"],
        reg_skops=paths["reg.skops"],
        lr_joblib=root / "lr.joblib",
        failing_joblib=root / "failing.joblib",
        lr_onnx=root / "lr.onnx",
        reference=root / "reference.json",
    )


@pytest.fixture(scope="session")
def lr_server(artifacts: Artifacts) -> Iterator[srv.Server]:
    """LogisticRegression served as model "lr", version 7, variant "canary"."""
    server = srv.start(
        ["--name", "lr", "--uri", artifacts.lr_skops.as_uri(), "--max-rows", "100",
         "--max-body-bytes", "65536", "--reference", str(artifacts.reference)],
        {"COALMINE_MODEL_VERSION": "7", "COALMINE_VARIANT": "canary"},
    )  # fmt: skip
    yield server
    server.stop()


def serve(name: str, artifact: Path) -> Iterator[srv.Server]:
    """A server for one fixture's lifetime, with default flags."""
    server = srv.start(["--name", name, "--uri", str(artifact)])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rf_server(artifacts: Artifacts) -> Iterator[srv.Server]:
    """The RandomForestClassifier served as model "rf"."""
    yield from serve("rf", artifacts.rf_skops)


@pytest.fixture(scope="session")
def reg_server(artifacts: Artifacts) -> Iterator[srv.Server]:
    """The LinearRegression (4 features) served as model "reg"."""
    yield from serve("reg", artifacts.reg_skops)


@pytest.fixture(scope="session")
def failing_server(artifacts: Artifacts) -> Iterator[srv.Server]:
    """FailingModel (3 features, raises on POISON) served as model "failing"."""
    server = srv.start(
        ["--name", "failing", "--uri", str(artifacts.failing_joblib), "--allow-unsafe-pickle"]
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pipeline, Path]:
    """A ColumnTransformer (OneHotEncoder on a string column) + LogisticRegression."""
    train = frame(300, 0)
    y = (train["colour"] == "red") ^ (train["size"] > 0.3 * train["count"] - 1)
    columns = ColumnTransformer(
        [("cat", OneHotEncoder(), ["colour"]), ("num", StandardScaler(), ["size", "count"])]
    )
    model = make_pipeline(columns, LogisticRegression()).fit(train, y.astype(int))
    path = tmp_path_factory.mktemp("pipeline") / "pipeline.skops"
    skops.io.dump(model, path)
    return model, path


@pytest.fixture(scope="session", params=["own-names", "signature"])
def pipeline_server(
    request: pytest.FixtureRequest, pipeline: tuple[Pipeline, Path]
) -> Iterator[srv.Server]:
    """The pipeline served on its own column names, and with a signature."""
    extra = ["--signature", json.dumps(SIGNATURE)] if request.param == "signature" else []
    server = srv.start(["--name", "p", "--uri", str(pipeline[1]), *extra])
    yield server
    server.stop()
