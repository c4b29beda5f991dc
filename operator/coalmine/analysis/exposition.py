"""Parse the Prometheus text exposition format (version 0.0.4) into samples.

Only what the serving pods emit matters, but the parser accepts any valid
exposition (comments, escapes in label values, timestamps, +Inf/NaN) so a
scrape through a proxy or a newer client library never breaks the analysis.
It is ours rather than prometheus_client's parser because that one is several
times slower on a serving pod's scrape (benchmarks/operator/exposition.py), and
the operator parses every variant's pods at every analysis interval.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass(frozen=True)
class Sample:
    """One line of the exposition: a series and its value."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, name: str) -> str | None:
        return next((v for k, v in self.labels if k == name), None)


def parse_metrics(text: str) -> list[Sample]:
    """Every sample in `text`; raises ValueError on a malformed line."""
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            samples.append(_parse_line(stripped))
        except (ValueError, IndexError) as exc:
            raise ValueError(f"line {number}: {exc}: {line!r}") from None
    return samples


def _parse_line(line: str) -> Sample:
    match = _NAME.match(line)
    if match is None:
        raise ValueError("no metric name")
    name, pos = match.group(), match.end()
    labels: tuple[tuple[str, str], ...] = ()
    if pos < len(line) and line[pos] == "{":
        labels, pos = _parse_labels(line, pos + 1)
    fields = line[pos:].split()
    if not fields or len(fields) > 2:
        raise ValueError("expected a value and an optional timestamp")
    return Sample(name, labels, _parse_value(fields[0]))


def _parse_labels(line: str, pos: int) -> tuple[tuple[tuple[str, str], ...], int]:
    labels: list[tuple[str, str]] = []
    while True:
        pos = _skip_spaces(line, pos)
        if line[pos] == "}":
            return tuple(labels), pos + 1
        match = _LABEL_NAME.match(line, pos)
        if match is None:
            raise ValueError("bad label name")
        pos = _skip_spaces(line, match.end())
        if line[pos] != "=":
            raise ValueError("expected '='")
        pos = _skip_spaces(line, pos + 1)
        if line[pos] != '"':
            raise ValueError("expected a quoted label value")
        value, pos = _parse_quoted(line, pos + 1)
        labels.append((match.group(), value))
        pos = _skip_spaces(line, pos)
        if line[pos] == ",":
            pos += 1
        elif line[pos] != "}":
            raise ValueError("expected ',' or '}'")


def _parse_quoted(line: str, pos: int) -> tuple[str, int]:
    chars = []
    while line[pos] != '"':
        if line[pos] == "\\":
            pos += 1
            chars.append(_ESCAPES.get(line[pos], "\\" + line[pos]))
        else:
            chars.append(line[pos])
        pos += 1
    return "".join(chars), pos + 1


def _skip_spaces(line: str, pos: int) -> int:
    while line[pos] in " \t":
        pos += 1
    return pos


def _parse_value(text: str) -> float:
    special = {"+Inf": math.inf, "Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
    return special[text] if text in special else float(text)
