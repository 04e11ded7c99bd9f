"""COCO's 101-point interpolated average precision from scored true/false positives.

The same arithmetic as pycocotools' `COCOeval.accumulate` for one class and one IoU threshold,
so that dv_mAP is on the same scale as the COCO AP50 it tightens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)


def average_precision(scores: Sequence[float], true_positive: Sequence[bool], num_ground_truth: int) -> float:
    """Mean interpolated precision at recall 0, 0.01, ..., 1.

    Detections are ranked by score (stable for ties); precision at a recall threshold is the best
    precision at any recall at or above it, and 0 where that recall is never reached.
    NaN when there is no ground truth (AP is undefined).
    """
    if num_ground_truth == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    tp = np.asarray(true_positive, dtype=bool)[order]
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(~tp)
    recall = tp_cum / num_ground_truth
    precision = tp_cum / (tp_cum + fp_cum)
    # Interpolate: precision at recall r is the maximum precision at any recall >= r.
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    positions = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
    sampled = np.where(positions < len(precision), precision[np.minimum(positions, len(precision) - 1)], 0.0)
    return float(sampled.mean())
