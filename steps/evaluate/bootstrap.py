"""A paired bootstrap over validation images: how sure are we that the challenger is better?

Both models are scored on the same resampled images (drawn with replacement, each model with its
own predictions on them), so image difficulty cancels out of the difference. The confidence is
the share of resamples in which the challenger's score beats the champion's (ties count half);
a resample where either score is undefined (NaN, e.g. no plate drawn for EIR) is left out.
Definitions: docs/metrics.md#promotion.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from steps.config import EvaluateConfig
from steps.metrics.coco_ap import check_predictions, with_mask_rles
from steps.metrics.summary import above_threshold, family_metrics, family_of
from steps.parallel import parallel_map_shared

Metric = Callable[[dict[str, Any], list[dict[str, Any]]], float]


@dataclass(frozen=True)
class Comparison:
    confidence: float  # P(challenger better), NaN when no resample was defined
    samples: int  # resamples with both scores defined
    images: int  # images resampled


def paired_bootstrap(gt: dict[str, Any], challenger: list[dict[str, Any]], champion: list[dict[str, Any]],
                     metric: Metric, samples: int, mode: str = "max", seed: int = 0,
                     workers: int | None = None) -> Comparison:
    """Resample gt's images `samples` times; compare metric(challenger) with metric(champion).

    The resamples are drawn here, in order, and scored on `workers` processes (default: the
    available cores): the same draws and scores as one process, in a fraction of the time.
    """
    images = list(gt["images"])
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(images), len(images)) for _ in range(samples)]
    pool = _Pool(gt, images, _by_image(gt.get("annotations", [])), _by_image(challenger), _by_image(champion), metric)
    wins, defined = 0.0, 0
    for a, b in parallel_map_shared(_score_both, pool, draws, workers):
        if math.isnan(a) or math.isnan(b):
            continue
        gain = a - b if mode == "max" else b - a
        defined += 1
        wins += 1.0 if gain > 0 else 0.5 if gain == 0 else 0.0
    return Comparison(wins / defined if defined else float("nan"), defined, len(images))


def bootstrap_key(gt: dict[str, Any], challenger: list[dict[str, Any]], champion: list[dict[str, Any]], key: str,
                  config: EvaluateConfig, samples: int, mode: str = "max", workers: int | None = None) -> Comparison:
    """paired_bootstrap of one metric key (`segm/AP50`, `dv_mAP`, ...), as evaluate compares models.

    Each resample scores both models. For COCO keys the predictions are checked once here (a
    resample only renumbers their images) and, for segm, the ground-truth polygons rasterised
    once, not twice a resample: COCO scores read masks only (dv_mAP and EIR read the polygons).
    """
    family = family_of(key)
    coco = family in ("bbox", "segm")
    if coco:
        for predictions in (challenger, champion):  # what family_metrics will score of them
            check_predictions(gt, above_threshold(predictions, config), family)  # type: ignore[arg-type]
        gt = with_mask_rles(gt) if family == "segm" else gt

    def metric(sample_gt: dict[str, Any], sample_results: list[dict[str, Any]]) -> float:
        return family_metrics(family, sample_gt, sample_results, config, checked=coco).get(key, float("nan"))

    return paired_bootstrap(gt, challenger, champion, metric, samples, mode, workers=workers)


@dataclass(frozen=True)
class _Pool:
    """What every resample is drawn from (inherited by the forked workers, never pickled)."""

    gt: dict[str, Any]
    images: list[dict[str, Any]]
    annotations: dict[int, list[dict[str, Any]]]
    ours: dict[int, list[dict[str, Any]]]
    theirs: dict[int, list[dict[str, Any]]]
    metric: Metric


def _score_both(pool: _Pool, drawn: np.ndarray) -> tuple[float, float]:
    resampled = _resample(pool.gt, pool.images, drawn, pool.annotations)
    return (pool.metric(resampled, _results(drawn, pool.images, pool.ours)),
            pool.metric(resampled, _results(drawn, pool.images, pool.theirs)))


def _by_image(items: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        grouped[int(item["image_id"])].append(item)
    return grouped


def _resample(gt: dict[str, Any], images: list[dict[str, Any]], drawn: np.ndarray,
              annotations: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """A ground truth of the drawn images; a repeated image becomes a new image id (1, 2, ...)."""
    new_images, new_annotations = [], []
    for position, index in enumerate(drawn, start=1):
        image = images[index]
        new_images.append({**image, "id": position})
        for ann in annotations.get(int(image["id"]), []):
            new_annotations.append({**ann, "id": len(new_annotations) + 1, "image_id": position})
    return {**gt, "images": new_images, "annotations": new_annotations}


def _results(drawn: np.ndarray, images: list[dict[str, Any]], results: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [{**res, "image_id": position}
            for position, index in enumerate(drawn, start=1) for res in results.get(int(images[index]["id"]), [])]
