"""Counters of one variant's serving pods, summed at one scrape: where an analysis or
monitoring window starts, kept in status so windows survive an operator restart."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from coalmine.api.base import ApiModel, Counter

Tally = dict[Annotated[str, StringConstraints(max_length=253)], Annotated[float, Field(ge=0)]]


class VariantCounters(ApiModel):
    """The series the built-in metrics read, summed over a variant's pods."""

    pods: Counter = 0
    """Pods scraped; fewer than last time means counters were lost, so the window restarts."""
    requests: Annotated[float, Field(ge=0)] = 0
    """Inference requests answered."""
    server_errors: Annotated[float, Field(ge=0)] = 0
    """Requests answered with a 5xx status."""
    latency_buckets: Tally = Field(default_factory=dict, max_length=64)
    """Cumulative request-duration histogram: upper bound in seconds (`le`) -> count."""
    predictions: Tally = Field(default_factory=dict, max_length=1000)
    """Predicted rows per class (classifiers)."""
    prediction_buckets: Tally = Field(default_factory=dict, max_length=64)
    """Cumulative histogram of predicted values (regressors): `le` -> count."""
    input_rows: Annotated[float, Field(ge=0)] = 0
    """Rows observed for drift."""
    out_of_range_rows: Annotated[float, Field(ge=0)] = 0
    """Rows with a feature outside the reference range."""
    feature_bins: dict[Annotated[str, StringConstraints(max_length=253)], Tally] = Field(
        default_factory=dict, max_length=512
    )
    """Live values per reference bin: feature -> bin index -> count."""
    compared_rows: Annotated[float, Field(ge=0)] = 0
    """Stable pods: rows of requests copied to the canary whose answers were compared."""
    agreeing_rows: Annotated[float, Field(ge=0)] = 0
    """Stable pods: compared rows on which the canary agreed."""
    delta_buckets: Tally = Field(default_factory=dict, max_length=64)
    """Stable pods: cumulative histogram of |canary - stable| over compared regression rows."""
    unanswered_mirrors: Annotated[float, Field(ge=0)] = 0
    """Stable pods: copies the canary never answered (timed out or unreachable)."""
    labelled_rows: Annotated[float, Field(ge=0)] = 0
    """Predicted rows whose true label or value was posted as feedback and matched."""
    correct_rows: Annotated[float, Field(ge=0)] = 0
    """Classifiers: labelled rows whose prediction equalled the truth."""
    absolute_error: Annotated[float, Field(ge=0)] = 0
    """Regressors: sum of |prediction - truth| over labelled rows."""
