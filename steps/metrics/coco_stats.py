"""pycocotools' twelve summary figures, read from COCOeval's precision and recall arrays.

`summarize` is pycocotools' own reduction of the arrays (`COCOeval.summarize`, `_summarize`),
with NaN where it reports -1 (no ground truth in that area range).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")  # the first six COCO stats, in order
RECALL_KEYS = ("AR1", "AR10", "AR100", "ARs", "ARm", "ARl")  # the last six
AREAS = ("all", "small", "medium", "large")  # pycocotools' params.areaRngLbl, in its order


@dataclass(frozen=True)
class Scored:
    """COCOeval's `eval` arrays and the parameters that index them."""

    precision: np.ndarray  # [IoU thresholds, recall thresholds, categories, areas, max dets]
    recall: np.ndarray  # [IoU thresholds, categories, areas, max dets]
    categories: tuple[int, ...]
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    max_dets: tuple[int, ...]


def summarize(scored: Scored, recall: bool = False) -> dict[str, float]:
    """COCOeval.summarize's stats by name: AP ... APl, and AR1 ... ARl with `recall`.

    The mean of the defined entries (> -1) as pycocotools takes it; NaN where it reports -1 (no
    ground truth in that area range).
    """
    top = scored.max_dets.index(max(scored.max_dets))

    def precision(area: str = "all", iou: float | None = None) -> float:
        values = scored.precision[..., AREAS.index(area), top]
        return _mean(values if iou is None else values[scored.iou_thresholds == iou])

    stats = {"AP": precision(), "AP50": precision(iou=0.5), "AP75": precision(iou=0.75),
             "APs": precision("small"), "APm": precision("medium"), "APl": precision("large")}
    if recall:
        dets = {f"AR{n}": _mean(scored.recall[:, :, 0, scored.max_dets.index(n)]) for n in scored.max_dets}
        stats.update(dets)
        stats.update({f"AR{area[0]}": _mean(scored.recall[:, :, AREAS.index(area), top]) for area in AREAS[1:]})
    return stats


def _mean(values: np.ndarray) -> float:
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else math.nan
