"""The statistics behind the built-in metrics, on plain counts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

PSI_FLOOR = 1e-4
"""Share given to an empty bin, so PSI stays finite (the serving image uses the same)."""


def buckets(cumulative: Mapping[str, float]) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) pairs in bound order, made monotonic."""
    pairs = sorted((float(le), count) for le, count in cumulative.items())
    running = 0.0
    out = []
    for bound, count in pairs:
        running = max(running, count)
        out.append((bound, running))
    return out


def quantile(q: float, cumulative: Mapping[str, float]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolating linearly inside the bucket
    (the estimate PromQL's histogram_quantile makes); None without observations."""
    pairs = buckets(cumulative)
    if not pairs or pairs[-1][1] <= 0:
        return None
    rank = q * pairs[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in pairs:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # the +Inf bucket has no width: report its lower edge
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return pairs[-1][0]


def per_bucket(cumulative: Mapping[str, float]) -> dict[str, float]:
    """Counts per bucket (not cumulative), keyed by upper bound."""
    out = {}
    previous = 0.0
    for bound, count in buckets(cumulative):
        out[repr(bound)] = count - previous
        previous = count
    return out


def total_variation(a: Mapping[str, float], b: Mapping[str, float]) -> float | None:
    """Half the L1 distance between two normalised distributions (0 same, 1 disjoint)."""
    total_a, total_b = sum(a.values()), sum(b.values())
    if total_a <= 0 or total_b <= 0:
        return None
    keys = set(a) | set(b)
    return 0.5 * sum(abs(a.get(k, 0.0) / total_a - b.get(k, 0.0) / total_b) for k in keys)


def psi(actual: Sequence[float], expected: Sequence[float]) -> float | None:
    """Population stability index of `actual` counts against `expected` counts or shares."""
    total_a, total_e = sum(actual), sum(expected)
    if total_a <= 0 or total_e <= 0 or len(actual) != len(expected):
        return None
    value = 0.0
    for a, e in zip(actual, expected, strict=True):
        share_a = max(a / total_a, PSI_FLOOR)
        share_e = max(e / total_e, PSI_FLOOR)
        value += (share_a - share_e) * math.log(share_a / share_e)
    return value
