"""Model outputs as COCO results: the one format evaluate, test and coco-eval read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from steps.masks import encode


def coco_results(image_id: int, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, masks: np.ndarray,
                 category_of_label: Mapping[int, int], score_threshold: float) -> list[dict[str, Any]]:
    """One result per detection at or above the threshold, best score first.

    `boxes` are x1, y1, x2, y2; `labels` the model's class indices, mapped to COCO category ids;
    `masks` boolean H x W per detection, stored as compressed RLE.
    """
    results = []
    for box, score, label, mask in zip(boxes, scores, labels, masks):
        if score < score_threshold:
            continue
        x1, y1, x2, y2 = (float(v) for v in box)
        results.append({
            "image_id": int(image_id),
            "category_id": int(category_of_label[int(label)]),
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "score": float(score),
            "segmentation": encode(np.asarray(mask, dtype=bool)),
        })
    return sorted(results, key=lambda r: -r["score"])
