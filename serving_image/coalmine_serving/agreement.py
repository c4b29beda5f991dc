"""Row-by-row comparison of the stable model's answers with the canary's (shadow steps).

A classifier's rows agree when both name the same class, compared as text so a label
that crossed JSON (``1`` or ``"1"``) still matches its numpy value. A regressor's rows
agree within a relative and absolute tolerance, as a float32 model or another BLAS
would differ from the same model in float64. Answers of another shape are counted as
mismatched and compare nothing: a bad canary must not crash the stable pod that watches
it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

RELATIVE_TOLERANCE = 1e-6
ABSOLUTE_TOLERANCE = 1e-9
MAX_CLASSES = 32
"""Confusion cells are kept per pair of classes up to this many distinct classes a side;
the rest count under OTHER, so a canary answering free text cannot grow the metrics."""
OTHER = "__other__"


@dataclass(frozen=True)
class Comparison:
    """What one mirrored batch showed."""

    rows: int
    """Rows compared (0 when the shapes did not match)."""
    agreeing: int
    mismatched: bool = False
    pairs: dict[tuple[str, str], int] = field(default_factory=dict)
    """Classifiers: (stable class, canary class) -> rows."""
    deltas: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Regressors: |canary - stable| per row."""
    disagreeing: tuple[int, ...] = ()
    """Indexes of the first disagreeing rows (a few, for examples)."""


def compare(
    stable: npt.NDArray[Any], canary: Any, *, classifier: bool, examples: int = 3
) -> Comparison:
    """Compare the stable answers of a batch with the canary's answers (any array-like)."""
    try:
        theirs = np.asarray(canary)
    except (ValueError, TypeError):
        return Comparison(0, 0, mismatched=True)
    ours = np.asarray(stable)
    if theirs.shape != ours.shape or ours.ndim != 1:
        return Comparison(0, 0, mismatched=True)
    if classifier:
        if ours.dtype.kind in "biu" and theirs.dtype.kind in "biu":
            same = ours == theirs  # integer classes, as most are: no text needed
        else:
            same = ours.astype(str) == theirs.astype(str)
        pairs = _agreeing(ours) if same.all() else _pairs(ours.astype(str), theirs.astype(str))
        deltas = np.zeros(0)
    else:
        if theirs.dtype.kind not in "biuf":
            return Comparison(0, 0, mismatched=True)
        a, b = ours.astype(np.float64), theirs.astype(np.float64)
        deltas = np.abs(b - a)
        same = deltas <= ABSOLUTE_TOLERANCE + RELATIVE_TOLERANCE * np.abs(a)
        pairs = {}
    differing = np.flatnonzero(~same)[:examples]
    return Comparison(
        rows=int(ours.shape[0]),
        agreeing=int(same.sum()),
        pairs=pairs,
        deltas=deltas,
        disagreeing=tuple(int(i) for i in differing),
    )


def _agreeing(ours: npt.NDArray[Any]) -> dict[tuple[str, str], int]:
    """The confusion of a batch where every row agreed: the diagonal, counted per class."""
    values, counts = np.unique(ours, return_counts=True)
    return {(str(v), str(v)): int(n) for v, n in zip(values.tolist(), counts.tolist(), strict=True)}


def _pairs(mine: npt.NDArray[np.str_], other: npt.NDArray[np.str_]) -> dict[tuple[str, str], int]:
    stacked = np.stack([mine, other], axis=1)
    values, counts = np.unique(stacked, axis=0, return_counts=True)
    return {
        (str(s), str(c)): int(n) for (s, c), n in zip(values.tolist(), counts.tolist(), strict=True)
    }


class Confusion:
    """Rows per (stable class, canary class), bounded to MAX_CLASSES distinct classes a side."""

    def __init__(self, max_classes: int = MAX_CLASSES) -> None:
        self.max_classes = max_classes
        self.cells: dict[tuple[str, str], int] = {}
        self._stable: set[str] = set()
        self._canary: set[str] = set()

    def add(self, pairs: dict[tuple[str, str], int]) -> None:
        for (s, c), n in pairs.items():
            key = (
                _bounded(s, self._stable, self.max_classes),
                _bounded(c, self._canary, self.max_classes),
            )
            self.cells[key] = self.cells.get(key, 0) + n


def _bounded(label: str, seen: set[str], limit: int) -> str:
    if label in seen:
        return label
    if len(seen) < limit:
        seen.add(label)
        return label
    return OTHER
