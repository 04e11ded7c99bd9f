"""Run a model over a COCO split and score it (metrics: steps.metrics.all_metrics)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from steps.config import EvaluateConfig


def predict_split(predictor: Any, gt: dict, images_dir: Path, score_threshold: float, prefix: str = "  ") -> list[dict]:
    """COCO results for every image of the split, with a progress line (rate, ETA) every 10 s."""
    from steps.progress import Progress

    results: list[dict] = []
    images = gt["images"]
    progress = Progress(len(images), "images predicted", prefix)
    for index, image in enumerate(images, start=1):
        results.extend(predictor.predict(images_dir / image["file_name"], image["id"], score_threshold))
        progress.update(index)
    return results


def score(gt: dict, results: list[dict], config: EvaluateConfig) -> dict[str, float]:
    """Flat metrics: `bbox/AP`, `segm/AP50`, ..., `dv_mAP`, `EIR` (all in [0, 1])."""
    from steps.metrics import all_metrics

    return all_metrics(gt, results, config)


def load_split(dataset_dir: Path, split: str) -> dict:
    return json.loads((dataset_dir / f"{split}.json").read_text())
