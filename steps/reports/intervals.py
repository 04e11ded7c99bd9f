"""The 95% bootstrap interval of each headline figure of a report: how much 8 images can say.

The images of the split are resampled with replacement (as the promotion bootstrap does,
steps/evaluate/bootstrap.py) and each headline figure (steps/reports/class_metrics.py `headline`) is
recomputed on every resample, from the matches made once (steps/metrics/resampled.py); the interval is the 2.5th to 97.5th percentile of those values.
A figure on a handful of images then reads "0.84 (0.52-1.00)" instead of four exact-looking decimals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from steps.reports.class_metrics import headline, headline_keys
from steps.config import EvaluateConfig
from steps.metrics.resampled import Resampled
from steps.metrics.summary import family_of
from steps.parallel import parallel_map_shared

SAMPLES = 100  # enough for a 95% interval to about +-0.02 of its ends; each costs one scoring


def headline_intervals(gt: dict[str, Any], results: list[dict[str, Any]], config: EvaluateConfig,
                       groups: Mapping[str, Sequence[str]] | None, samples: int = SAMPLES, seed: int = 0,
                       workers: int | None = None) -> dict[str, tuple[float, float]]:
    """{headline figure: (low, high)}: the 95% percentile interval over `samples` resamples."""
    images = list(gt.get("images", []))
    names = [str(c["name"]) for c in gt.get("categories", [])]
    keys_of = {figure: headline_keys(figure, groups, names)
               for figure in headline({f"segm/AP-{n}": 0.0 for n in names} | _family_keys(gt, config), groups)}
    keys_of = {figure: keys for figure, keys in keys_of.items() if keys}
    if not images or not keys_of or samples < 1:
        return {}
    families = tuple(sorted({family_of(key) for keys in keys_of.values() for key in keys}))
    wanted = tuple(sorted({key for keys in keys_of.values() for key in keys}))
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(images), len(images)) for _ in range(samples)]
    resampled = Resampled(gt, results, config, families, keys=wanted)
    values: dict[str, list[float]] = {figure: [] for figure in keys_of}
    for metrics in parallel_map_shared(_score, resampled, draws, workers, threads_unused=True):
        for figure, keys in keys_of.items():
            finite = [metrics[k] for k in keys if k in metrics and math.isfinite(metrics[k])]
            if finite:
                values[figure].append(sum(finite) / len(finite))
    return {figure: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for figure, v in values.items() if v}


def _family_keys(gt: dict[str, Any], config: EvaluateConfig) -> dict[str, float]:
    """dv_mAP and EIR exist only on a dataset with the plate class: headline() shows them then."""
    has_plates = config.plate_label in {c["name"] for c in gt.get("categories", [])}
    return {"dv_mAP": 0.0, "EIR": 0.0} if has_plates else {}


def _score(resampled: Resampled, drawn: np.ndarray) -> dict[str, float]:
    return resampled.metrics(drawn)
