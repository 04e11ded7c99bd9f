"""Per-class results from the flat metric keys: the plate class, the mean of the other classes, each class.

The mean over every class hides what a plate model does: on the sample data the plate class is
found long before 10 small digit classes are, so the summary and both reports lead with these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

COLUMNS = ("AP", "AP50", "AP75")


@dataclass(frozen=True)
class ClassRow:
    name: str
    kind: str  # "plate" | "mean" | "class"
    values: dict[str, float]  # column -> value, NaN when not measured


def class_names(metrics: Mapping[str, float], iou_type: str = "segm") -> list[str]:
    prefix = f"{iou_type}/AP-"
    return [key[len(prefix):] for key in metrics if key.startswith(prefix)]


def class_rows(metrics: Mapping[str, float], plate_label: str, iou_type: str = "segm") -> list[ClassRow]:
    """The plate row, one row for the mean of the other classes, then each other class."""
    names = class_names(metrics, iou_type)
    others = [name for name in names if name != plate_label]

    def values(name: str) -> dict[str, float]:
        return {col: _number(metrics.get(f"{iou_type}/{col}-{name}")) for col in COLUMNS}

    rows = [ClassRow(plate_label, "plate", values(plate_label))] if plate_label in names else []
    if others:
        mean = {col: _mean([values(name)[col] for name in others]) for col in COLUMNS}
        rows.append(ClassRow(f"characters (mean of {len(others)})", "mean", mean))
    return rows + [ClassRow(name, "class", values(name)) for name in sorted(others)]


def headline(metrics: Mapping[str, float], plate_label: str) -> dict[str, float]:
    """The few numbers that say whether plates are found and read: mask AP50 per kind, EIR."""
    rows = {row.kind: row for row in class_rows(metrics, plate_label)}
    figures = {}
    if "plate" in rows:
        figures[f"{plate_label} mask AP50"] = rows["plate"].values["AP50"]
    if "mean" in rows:
        figures["character mask AP50 (mean)"] = rows["mean"].values["AP50"]
    for key in ("dv_mAP", "EIR"):
        if key in metrics:
            figures[key] = _number(metrics[key])
    return figures


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan
