"""A promotion decision's figures, named once.

evaluation.json's `promotion`, the evaluation report, notify's summary and its webhook's
`run.promotion` all use these names and write the values the same way: what the report shows as
`gain_low` is evaluation.json's `gain_low` is the webhook's. The database's `promotions` table
keeps each under `column` (three have older column names).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    name: str
    column: str  # in the promotions table
    form: str  # how it is written: score, signed, count or text


# In the order they are shown. `promoted` and `reason` are the verdict itself, shown apart.
FIGURES: tuple[Figure, ...] = (
    Figure("challenger_score", "challenger_score", "score"),  # the select_key's value
    Figure("champion_score", "champion_score", "score"),
    Figure("gain", "gain", "signed"),  # challenger - champion (the reverse for select_mode min)
    Figure("gain_low", "gain_low", "signed"),  # the gain's bootstrap interval ...
    Figure("gain_high", "gain_high", "signed"),
    Figure("interval_level", "interval_level", "score"),  # ... and its coverage
    Figure("min_gain", "min_gain", "signed"),  # promotion.min_gain: the gain must exceed it
    Figure("confidence", "confidence", "score"),  # 1 - p of "the gain is at most min_gain"
    Figure("required_confidence", "required_confidence", "score"),  # 1 - the test's level
    Figure("min_confidence", "min_confidence", "score"),  # promotion.min_confidence, before corrections
    Figure("samples", "bootstrap_samples", "count"),  # resamples with both scores defined
    Figure("images", "val_images", "count"),  # validation images compared on
    Figure("objects", "val_objects", "count"),  # objects the select_key scores
    Figure("candidates", "candidates", "count"),  # checkpoints the challenger is the best of
    Figure("reign_comparison", "reign_comparison", "count"),  # the test's place in the champion's reign
    Figure("comparison_set", "comparison_set", "text"),  # the validation split's identity
)
VERDICT = ("promoted", "reason")
NAMES = VERDICT + tuple(f.name for f in FIGURES)


def written(figure: Figure, value: Any) -> str:
    """A figure's value as the report and notify write it."""
    if figure.form == "text" or isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if figure.form == "count":
        return str(int(value))
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:+.4f}" if figure.form == "signed" else f"{value:.4f}"


def shown(promotion: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, value as written) of each figure the decision has, in FIGURES' order."""
    return [(f.name, written(f, promotion[f.name])) for f in FIGURES if promotion.get(f.name) is not None]


def from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The decision from a promotions row read as {column: value}, under the names."""
    decision = {"promoted": None if row.get("promoted") is None else bool(row["promoted"]), "reason": row.get("reason")}
    return {**decision, **{f.name: row.get(f.column) for f in FIGURES}}
