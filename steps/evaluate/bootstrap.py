"""A paired bootstrap over validation images, and the test of a gain it makes possible.

Both models are scored on the same resampled images (drawn with replacement, each model with its
own predictions on them), so image difficulty cancels out of the difference. A resample where
either score is undefined (NaN, e.g. no plate drawn for EIR) is left out.

`gain_test` turns the resampled gains into a calibrated one-sided test of "the gain exceeds
min_gain": the resampled gains, centred on the observed one, stand for what the gain would do by
chance if the true gain were exactly min_gain (the centred, or basic, bootstrap). Its p-value and
the interval it gives agree by construction: p <= alpha exactly when the interval's lower end is
above min_gain. Definitions and measured error rates: docs/metrics.md#promotion.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from steps.config import EvaluateConfig
from steps.metrics.resampled import Resampled, by_image, resample_gt, resample_results
from steps.metrics.summary import family_of
from steps.parallel import parallel_map_shared

Metric = Callable[[dict[str, Any], list[dict[str, Any]]], float]


@dataclass(frozen=True)
class Comparison:
    gain: float  # observed on the whole split (challenger better: positive)
    low: float  # basic bootstrap interval of the gain, each end at level `alpha`
    high: float
    alpha: float  # the test's level: one minus the confidence it needs
    p_value: float  # of "the gain is at most min_gain"; NaN when no resample was defined
    samples: int  # resamples with both scores defined
    images: int  # images resampled
    passed: bool = False  # p <= alpha (and so low > min_gain): the gain is confirmed

    @property
    def confidence(self) -> float:
        """How sure the test is that the gain exceeds min_gain: 1 - p."""
        return 1.0 - self.p_value

    @property
    def level(self) -> float:
        """The interval's coverage: 1 - 2 alpha (alpha on each side)."""
        return 1.0 - 2.0 * self.alpha


def gain_test(gain: float, resampled: np.ndarray, min_gain: float, alpha: float, images: int) -> Comparison:
    """The centred bootstrap test of gain > min_gain at level `alpha`, and the gain's interval.

    p = (1 + #{g* - gain >= gain - min_gain}) / (B + 1) over the B defined resampled gains g*;
    the interval is [2 gain - q_hi, 2 gain - q_lo], q_hi the k-th largest g*, q_lo the k-th
    smallest, k = floor(alpha (B + 1)): p <= alpha exactly when low > min_gain. With k = 0 (too
    few resamples to resolve alpha) the interval is unbounded and nothing passes.
    """
    values = np.asarray(resampled, dtype=np.float64)
    defined = np.sort(values[~np.isnan(values)])
    count = len(defined)
    if count == 0 or math.isnan(gain):
        return Comparison(gain, math.nan, math.nan, alpha, math.nan, count, images)
    exceeding = int(np.count_nonzero(defined >= 2 * gain - min_gain))  # g* - gain >= gain - min_gain
    k = math.floor(alpha * (count + 1) + 1e-9)  # the tolerance absorbs alpha * (B + 1)'s rounding
    low, high = (2 * gain - defined[count - k], 2 * gain - defined[k - 1]) if k >= 1 else (-math.inf, math.inf)
    return Comparison(gain, float(low), float(high), alpha, (1 + exceeding) / (count + 1), count, images,
                      passed=exceeding <= k - 1)


def draw_resamples(images: int, samples: int, seed: int = 0) -> list[np.ndarray]:
    """The image indexes of each resample, drawn in order from one seeded generator."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, images, images) for _ in range(samples)]


def paired_bootstrap(gt: dict[str, Any], challenger: list[dict[str, Any]], champion: list[dict[str, Any]],
                     metric: Metric, samples: int, mode: str = "max", seed: int = 0,
                     workers: int | None = None) -> np.ndarray:
    """The gain (challenger's metric minus champion's; the reverse for mode min) on each of
    `samples` resamples of gt's images, NaN where either score is undefined.

    The resamples are drawn here, in order, and scored on `workers` processes (default: the
    available cores): the same draws and scores as one process, in a fraction of the time.
    """
    images = list(gt["images"])
    draws = draw_resamples(len(images), samples, seed)
    pool = _Pool(gt, images, by_image(gt.get("annotations", [])), by_image(challenger), by_image(champion), metric)
    sign = 1.0 if mode == "max" else -1.0
    return np.array([sign * (a - b) for a, b in parallel_map_shared(_score_both, pool, draws, workers)],
                    dtype=np.float64)


def bootstrap_key(gt: dict[str, Any], challenger: list[dict[str, Any]], champion: list[dict[str, Any]], key: str,
                  config: EvaluateConfig, samples: int, mode: str = "max", workers: int | None = None,
                  seed: int = 0) -> np.ndarray:
    """paired_bootstrap of one metric key (`segm/AP50`, `dv_mAP`, ...), as evaluate compares models:
    the same draws and, resample by resample, the same scores.

    Each model's predictions are checked and matched on the whole split once (COCO keys; EIR's
    plates are read once), and each resample is then an accumulation over its drawn images
    (steps/metrics/resampled.py), on `workers` processes (default: the available cores).
    """
    family = family_of(key)
    ours, theirs = (Resampled(gt, predictions, config, (family,), keys=(key,)) for predictions in (challenger, champion))
    draws = draw_resamples(len(gt["images"]), samples, seed)
    sign = 1.0 if mode == "max" else -1.0
    scores = parallel_map_shared(_both, (ours, theirs, key), draws, workers, threads_unused=True)
    return np.array([sign * (a - b) for a, b in scores], dtype=np.float64)


def _both(shared: tuple[Resampled, Resampled, str], drawn: np.ndarray) -> tuple[float, float]:
    ours, theirs, key = shared
    return ours.metrics(drawn).get(key, math.nan), theirs.metrics(drawn).get(key, math.nan)


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
    resampled = resample_gt(pool.gt, pool.images, drawn, pool.annotations)
    return (pool.metric(resampled, resample_results(drawn, pool.images, pool.ours)),
            pool.metric(resampled, resample_results(drawn, pool.images, pool.theirs)))
