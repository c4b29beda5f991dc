"""Read a Prometheus text exposition the way a test asserts on it: sums of matching series."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Series = list[tuple[str, dict[str, str], float]]


def parse(text: str) -> Series:
    """Every sample of `text` as (name, labels, value)."""
    return [
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def total(series: Series, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 when none)."""
    return sum(
        value
        for sample, have, value in series
        if sample == name and all(have.get(k) == v for k, v in labels.items())
    )
