"""Per-feature drift (PSI) and out-of-range share against a reference distribution.

Counting is vectorised per batch (one comparison against every bin edge and a
single ``bincount``), so it costs microseconds however many features there are,
and PSI is computed only when Prometheus scrapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from coalmine_serving.errors import LoadError

PSI_EPSILON = 1e-4  # fraction used for empty bins so PSI stays finite


@dataclass(frozen=True)
class Reference:
    """Bin edges and expected fractions per feature, padded to one width."""

    names: list[str]
    n_bins: npt.NDArray[np.intp]
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
    inner_edges: npt.NDArray[np.float64]  # (features, max_bins - 1), +inf padded
    expected: npt.NDArray[np.float64]  # (features, max_bins), 0 padded


def parse_reference(source: str, n_features: int) -> Reference:
    """Read the reference from inline JSON or a file path; see docs/serving.md."""
    try:
        text = source if source.lstrip().startswith("{") else Path(source).read_text()
        doc: Any = json.loads(text)
        features = doc["features"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LoadError(f"cannot read the drift reference: {exc}") from None
    if not isinstance(features, list) or len(features) != n_features:
        got = len(features) if isinstance(features, list) else "no"
        raise LoadError(f"drift reference has {got} features; the model takes {n_features}")
    widest = max(len(f.get("expected", [])) for f in features) if features else 1
    inner = np.full((n_features, max(widest - 1, 0)), np.inf)
    expected = np.zeros((n_features, widest))
    lower, upper = np.empty(n_features), np.empty(n_features)
    n_bins = np.empty(n_features, dtype=np.intp)
    names = []
    for i, feature in enumerate(features):
        try:
            edges = np.asarray(feature["edges"], dtype=np.float64)
            fractions = np.asarray(feature["expected"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise LoadError(f"drift reference feature {i}: {exc}") from None
        bins = len(fractions)
        if bins < 1 or len(edges) != bins + 1 or np.any(np.diff(edges) <= 0):
            raise LoadError(
                f"drift reference feature {i}: need N+1 increasing edges for N fractions"
            )
        if not np.isclose(fractions.sum(), 1.0, atol=1e-3) or np.any(fractions < 0):
            raise LoadError(f"drift reference feature {i}: fractions must sum to 1")
        names.append(str(feature.get("name", f"f{i}")))
        lower[i], upper[i], n_bins[i] = edges[0], edges[-1], bins
        inner[i, : bins - 1] = edges[1:-1]
        expected[i, :bins] = fractions
    return Reference(names, n_bins, lower, upper, inner, expected)


class DriftTracker:
    """Running bin counts of live inputs, per feature."""

    def __init__(self, reference: Reference) -> None:
        self.reference = reference
        features, width = reference.expected.shape
        self.counts = np.zeros((features, width), dtype=np.int64)
        self.out_of_range = np.zeros(features, dtype=np.int64)
        self.rows = 0
        self.rows_out_of_range = 0
        self._offsets = (np.arange(features) * width)[None, :]
        self._size = features * width

    def observe(self, x: npt.NDArray[np.float64]) -> None:
        """Count a batch of rows; values outside the edges go to the end bins."""
        ref = self.reference
        bins = (x[:, :, None] >= ref.inner_edges[None, :, :]).sum(axis=2)
        flat = np.bincount((bins + self._offsets).ravel(), minlength=self._size)
        self.counts += flat.reshape(self.counts.shape)
        outside = (x < ref.lower) | (x > ref.upper)
        self.out_of_range += outside.sum(axis=0)
        self.rows += x.shape[0]
        self.rows_out_of_range += int(outside.any(axis=1).sum())

    def psi(self) -> npt.NDArray[np.float64]:
        """Population stability index per feature; 0 before any traffic."""
        if self.rows == 0:
            return np.zeros(len(self.reference.names))
        actual = np.maximum(self.counts / self.rows, PSI_EPSILON)
        expected = np.maximum(self.reference.expected, PSI_EPSILON)
        used = np.arange(expected.shape[1])[None, :] < self.reference.n_bins[:, None]
        terms = np.where(used, (actual - expected) * np.log(actual / expected), 0.0)
        return np.asarray(terms.sum(axis=1))


def reference_from_data(
    x: npt.NDArray[np.float64], bins: int = 10, names: list[str] | None = None
) -> dict[str, Any]:
    """A reference document (the --reference format) from training data: quantile bins."""
    features = []
    for j in range(x.shape[1]):
        column = x[:, j]
        edges = np.unique(np.quantile(column, np.linspace(0, 1, bins + 1)))
        counts = np.histogram(column, bins=edges)[0]
        features.append(
            {
                "name": names[j] if names else f"f{j}",
                "edges": edges.tolist(),
                "expected": (counts / counts.sum()).tolist(),
            }
        )
    return {"features": features}
