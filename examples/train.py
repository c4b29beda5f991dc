"""Train the example models and write their artifacts and ModelVersion manifests.

    python examples/train.py --out DIR [--uri-prefix pvc://coalmine-models/]

Versions of an iris classifier, each a real scikit-learn artifact (skops):
  iris-v1  logistic regression, a fair model
  iris-v2  random forest, a better one
  iris-v3  a forest trained on mislabelled data: it never errors, it is just
           wrong, and only comparing its predictions with stable's shows it
Faulty versions for the rollback tests:
  iris-errors   a pipeline that one-hot encodes rounded features and refuses
                values it never saw: a petal width of 4 cm or more makes the
                model raise (HTTP 500), typical inputs work
  iris-slow     a forest large enough to make every prediction slow
  iris-corrupt  bytes that are not a model, with a matching digest
A regressor, for shadow rollouts:
  diabetes-v1      linear regression of disease progression (scikit-learn's diabetes set)
  diabetes-offset  the same model answering 5 more for every row: plausible values, a
                   prediction histogram that barely moves, off by a small constant

Digests are computed from the files written, so the manifests always match.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
import yaml
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
DIABETES_FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
OFFSET = 5.0
OUTPUTS: dict[str, dict[str, Any]] = {
    "iris": {"kind": "classification", "classLabels": ["0", "1", "2"]},
    "diabetes": {"kind": "regression"},
}


def reference(x: np.ndarray, names: list[str], bins: int = 10) -> dict[str, Any]:
    """Per-feature training histograms: the baseline for drift."""
    features = []
    for i, name in enumerate(names):
        edges = np.unique(np.quantile(x[:, i], np.linspace(0, 1, bins + 1)))
        counts, _ = np.histogram(x[:, i], bins=edges)
        fractions = counts / counts.sum()
        rounded = [round(float(f), 6) for f in fractions]
        rounded[-1] = round(1.0 - sum(rounded[:-1]), 6)  # sums to 1 for the CRD's check
        features.append(
            {"name": name, "binEdges": [round(float(e), 6) for e in edges], "fractions": rounded}
        )
    return {"features": features}


def models() -> dict[str, tuple[Any, str, float | None, np.ndarray]]:
    x, y = load_iris(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    shuffled = np.array([2, 0, 1])[ytr]  # every class renamed: confidently wrong
    built = {
        "iris-v1": (LogisticRegression(C=0.05, max_iter=1000).fit(xtr, ytr), "fair"),
        "iris-v2": (
            RandomForestClassifier(n_estimators=50, max_depth=5, random_state=0).fit(xtr, ytr),
            "better",
        ),
        "iris-v3": (
            RandomForestClassifier(n_estimators=50, max_depth=5, random_state=0).fit(xtr, shuffled),
            "mislabelled",
        ),
        "iris-errors": (
            make_pipeline(
                FunctionTransformer(np.rint),
                OneHotEncoder(handle_unknown="error"),
                LogisticRegression(max_iter=1000),
            ).fit(np.vstack([xtr, np.zeros((1, 4))]), np.append(ytr, 0)),
            "fails on unseen petal widths",
        ),
        "iris-slow": (
            RandomForestClassifier(n_estimators=1500, max_depth=None, random_state=0).fit(xtr, ytr),
            "slow",
        ),
    }
    trained: dict[str, tuple[Any, str, float | None, np.ndarray]] = {
        name: (model, note, float((model.predict(xte) == yte).mean()), xtr)
        for name, (model, note) in built.items()
    }
    xd, yd = load_diabetes(return_X_y=True)
    regression = LinearRegression().fit(xd, yd)
    offset = LinearRegression().fit(xd, yd)
    offset.intercept_ = offset.intercept_ + OFFSET
    trained["diabetes-v1"] = (regression, "linear regression", None, xd)
    trained["diabetes-offset"] = (offset, f"answers {OFFSET:g} more for every row", None, xd)
    return trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--uri-prefix", default=None, help="default: file://OUT/")
    parser.add_argument("--namespace", default=None)
    args = parser.parse_args()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    prefix = args.uri_prefix or f"file://{out}/"
    manifests = []
    index = {}
    for name, (model, note, accuracy, xtr) in models().items():
        path = out / f"{name}.skops"
        sio.dump(model, path)
        shares = prediction_shares(model, xtr) if name.startswith("iris-") else None
        manifests.append(
            modelversion(name, path, prefix, accuracy, note, xtr, args.namespace, shares)
        )
        index[name] = manifests[-1]["spec"]["sha256"]
    corrupt = out / "iris-corrupt.skops"
    corrupt.write_bytes(b"this is not a model\n" * 64)
    manifests.append(
        modelversion("iris-corrupt", corrupt, prefix, None, "corrupt", None, args.namespace)
    )
    index["iris-corrupt"] = manifests[-1]["spec"]["sha256"]
    for path in out.iterdir():
        path.chmod(0o644)
    (out / "modelversions.yaml").write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    (out / "digests.json").write_text(json.dumps(index, indent=2) + "\n")
    print(f"wrote {len(manifests)} artifacts and {out / 'modelversions.yaml'}")


def prediction_shares(model: Any, x: np.ndarray) -> dict[str, float]:
    """The share of rows per predicted class on the training rows, keyed as the server
    labels classes: what monitoring's predictionShift compares live predictions with."""
    values, counts = np.unique(model.predict(x), return_counts=True)
    return {str(v): round(float(c) / len(x), 6) for v, c in zip(values, counts, strict=True)}


def modelversion(
    name: str,
    path: Path,
    prefix: str,
    accuracy: float | None,
    note: str,
    xtr: np.ndarray | None,
    namespace: str | None,
    shares: dict[str, float] | None = None,
) -> dict[str, Any]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    family = name.split("-", 1)[0]
    features = DIABETES_FEATURES if family == "diabetes" else FEATURES
    spec: dict[str, Any] = {
        "model": family,
        "version": name.removeprefix(f"{family}-"),
        "uri": prefix + path.name,
        "sha256": digest,
        "format": "skops",
        "signature": {
            "inputs": [{"name": f, "datatype": "FP64"} for f in features],
            "output": OUTPUTS[family],
        },
    }
    if accuracy is not None:
        spec["metrics"] = {"accuracy": round(accuracy, 4)}
    if xtr is not None:
        spec["reference"] = reference(xtr, features)
        if shares:
            spec["reference"]["predictions"] = shares
    meta: dict[str, Any] = {"name": name, "annotations": {"coalmine.dev/description": note}}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": meta,
        "spec": spec,
    }


if __name__ == "__main__":
    main()
