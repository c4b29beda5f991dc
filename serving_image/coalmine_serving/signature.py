"""The model's named inputs: from the ModelVersion's signature, or the model's own names.

Names are what make V2 inputs safe to send one per feature or in any order: a
client's ``petal_width`` is the model's ``petal_width`` wherever it sits in the
request. A model fitted on a pandas DataFrame knows its column names
(``feature_names_in_``); they count like a signature. Without either, inputs
are taken by position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coalmine_serving.errors import LoadError

DATATYPES = ("BOOL", "INT32", "INT64", "FP32", "FP64", "BYTES")
"""The signature datatypes the ModelVersion API allows."""
LISTED_NAMES = 10  # names quoted in an error message before "and N more"


@dataclass(frozen=True)
class Inputs:
    """Input names in the order the model takes them, with their V2 datatypes.

    ``declared`` datatypes come from a signature and hold exactly; the ones
    inferred from a model (FP64, BYTES for a string-encoded column) only keep
    strings and numbers apart.
    """

    names: tuple[str, ...]
    datatypes: tuple[str, ...]
    declared: bool = True
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {n: i for i, n in enumerate(self.names)})

    @property
    def numeric(self) -> bool:
        """True when every input is a number, so rows fit one float64 matrix."""
        return "BYTES" not in self.datatypes


def quote(names: list[str] | tuple[str, ...]) -> str:
    """Names for an error message, the first few of a long list."""
    shown = ", ".join(repr(n) for n in names[:LISTED_NAMES])
    more = len(names) - LISTED_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def parse_signature(source: str) -> Inputs:
    """Read a ModelVersion ``signature`` (inline JSON or a file path); LoadError if invalid."""
    try:
        text = source if source.lstrip().startswith("{") else Path(source).read_text()
        doc: Any = json.loads(text)
        specs = doc["inputs"]
        names = tuple(str(s["name"]) for s in specs)
        datatypes = tuple(str(s.get("datatype", "FP64")) for s in specs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LoadError(f"cannot read the signature: {exc}") from None
    if not names:
        raise LoadError("the signature has no inputs")
    if len(set(names)) != len(names):
        raise LoadError("the signature names an input twice")
    unknown = sorted(set(datatypes) - set(DATATYPES))
    if unknown:
        raise LoadError(f"the signature has unsupported datatypes {quote(unknown)}")
    return Inputs(names, datatypes)


def reconcile(signature: Inputs | None, own: Inputs | None, n_features: int) -> Inputs | None:
    """The names requests are matched by; LoadError when the two sources disagree.

    A signature that lists the model's own names in another order would feed
    every column to the wrong feature, so it refuses the load instead.
    """
    if signature is None:
        return own
    if len(signature.names) != n_features:
        raise LoadError(
            f"the signature has {len(signature.names)} inputs; the model takes {n_features}"
        )
    if own is not None and own.names != signature.names:
        raise LoadError(
            "the signature's inputs do not match the names the model was fitted with: "
            f"signature {quote(signature.names)}, model {quote(own.names)}"
        )
    return signature
