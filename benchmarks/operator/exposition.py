"""The analysis's scrape parser against prometheus_client's, on what a serving pod exports.

The builtin metrics scrape every variant's pods at each analysis interval, so the parse is
paid per pod per interval by the one operator for every running analysis. Issue 16 asked to
use the library's parser (`prometheus_client.parser.text_string_to_metric_families`) unless
a measurement shows scraping at scale needs ours: this is that measurement.

The text is a real serving pod's `/metrics`: `coalmine_serving.metrics.Metrics` of a
classifier with drift tracked on `--features` inputs, after traffic on both protocols. Both
parsers read it alternately, `--rounds` times, and the median time per parse and the ratio
are printed (with the load average). Both must yield the same samples, or it stops.

    PYTHONPATH=. .venv/bin/python benchmarks/operator/exposition.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.common import loadavg
from coalmine.analysis.exposition import Sample, parse_metrics
from coalmine_serving.drift import DriftTracker, parse_reference
from coalmine_serving.metrics import Metrics


def scrape(features: int) -> str:
    """A classifier pod's exposition after a few thousand requests."""
    edges = [0.0, 1.0, 2.0, 4.0, 8.0]
    reference = {
        "features": [
            {"name": f"f{i}", "edges": edges, "expected": [0.25] * 4} for i in range(features)
        ]
    }
    tracker = DriftTracker(parse_reference(json.dumps(reference), features))
    metrics = Metrics("iris", "v2", "canary", is_classifier=True, drift=tracker)
    rng = np.random.default_rng(0)
    for i in range(2000):
        protocol, code = ("v2" if i % 3 else "v1"), (200 if i % 50 else 500)
        metrics.request(protocol, code, float(rng.exponential(0.004)))
    rows = rng.uniform(0, 8, size=(256, features))
    metrics.batch(rows, rng.choice(np.array(["setosa", "versicolor", "virginica"]), size=256))
    text: str = metrics.render().decode()
    return text


def library(text: str) -> list[Sample]:
    return [
        Sample(s.name, tuple(sorted(s.labels.items())), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def ours(text: str) -> list[Sample]:
    return [Sample(s.name, tuple(sorted(s.labels)), s.value) for s in parse_metrics(text)]


def timed(parse: Callable[[str], list[Sample]], text: str) -> float:
    started = time.perf_counter()
    parse(text)
    return time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", type=int, default=4)
    p.add_argument("--rounds", type=int, default=300)
    args = p.parse_args()
    text = scrape(args.features)
    if sorted(ours(text), key=repr) != sorted(library(text), key=repr):
        print("the parsers disagree on the samples", file=sys.stderr)
        return 1
    times: dict[str, list[float]] = {"ours": [], "prometheus_client": []}
    before = loadavg()
    for _ in range(args.rounds):  # alternated, so a load spike hits both alike
        times["ours"].append(timed(parse_metrics, text))
        times["prometheus_client"].append(timed(library, text))
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"{len(text.splitlines())} lines, {len(ours(text))} samples, {args.rounds} rounds")
    for name, seconds in median.items():
        print(f"  {name:18} {seconds * 1e6:8.0f} us per parse (median)")
    ratio = median["prometheus_client"] / median["ours"]
    print(f"  prometheus_client / ours = {ratio:.2f}   load avg {before} -> {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
