"""COCO evaluation split by category over processes, merged back into pycocotools' numbers.

In pycocotools' COCOeval every category is scored on its own: `evaluateImg` matches the
detections of one (image, category) pair, and `accumulate` fills the precision and recall arrays
one category index at a time. So scoring a share of the categories in each process and putting
the arrays side by side again gives the very arrays one process would build, and `summarize`
below is pycocotools' own reduction of them (`COCOeval.summarize`, `_summarize`).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from steps.errors import InputError
from steps.parallel import available_cpus

SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")  # the first six COCO stats, in order
RECALL_KEYS = ("AR1", "AR10", "AR100", "ARs", "ARm", "ARl")  # the last six
AREAS = ("all", "small", "medium", "large")  # pycocotools' params.areaRngLbl, in its order
# Below this many predictions a shard costs more (a forked process) than it saves. Mask scoring
# does more per prediction: in two processes it was already 10% faster at 2,200 predictions and
# 16% at 3,800, where boxes broke even (scripts/bench.py's data, each call in a fresh process).
MIN_RESULTS_PER_SHARD = {"bbox": 2000, "segm": 1000}


@dataclass(frozen=True)
class Job:
    """What every shard reads: inherited by forked workers, never copied per shard."""

    gt: dict[str, Any]
    results: list[dict[str, Any]]
    iou_type: str
    sizes: dict[int, tuple[int, int]]
    categories: tuple[int, ...]
    checked: bool = False  # results already passed check_results (see coco_evaluate)
    box_areas: bool = False  # segm results get their box's area (see coco_ap.SegmArea)


@dataclass(frozen=True)
class Shard:
    categories: tuple[int, ...]  # ids scored in this shard
    results: list[int]  # positions in Job.results of their predictions


@dataclass(frozen=True)
class Scored:
    """COCOeval's `eval` arrays and the parameters that index them."""

    precision: np.ndarray  # [IoU thresholds, recall thresholds, categories, areas, max dets]
    recall: np.ndarray  # [IoU thresholds, categories, areas, max dets]
    categories: tuple[int, ...]
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    max_dets: tuple[int, ...]


def plan_shards(gt: dict[str, Any], results: list[Any], workers: int | None,
                iou_type: str = "bbox") -> list[Shard] | None:
    """Categories dealt to up to `workers` shards of about equal work; None: score in one process.

    Work is counted in objects (ground truth plus predictions) per category, and the largest go
    first to the lightest shard. Each shard gets at least MIN_RESULTS_PER_SHARD[iou_type]
    predictions on average, or there are fewer shards. A file that is not a list of objects with
    category ids gets None, so that the one-process check names the bad item.
    """
    workers = available_cpus() if workers is None else workers
    workers = min(workers, len(results) // MIN_RESULTS_PER_SHARD[iou_type])
    if workers < 2:
        return None
    try:
        predicted = list(map(itemgetter("category_id"), results))  # one C loop, not a Python one
        work = Counter(predicted)
    except (KeyError, TypeError):  # not objects with (hashable) category ids
        return None
    known = {c["id"] for c in gt["categories"]}
    if not set(work) <= known:
        return None
    work.update(_object_categories(gt.get("annotations", [])))
    bins: list[tuple[int, int, list[int]]] = [(0, n, []) for n in range(workers)]  # (work, tie-break, ids)
    for cat in sorted(known, key=lambda cat: (-work[cat], cat)):
        load, n, cats = heapq.heappop(bins)
        cats.append(cat)
        heapq.heappush(bins, (load + work[cat], n, cats))
    shards = [Shard(tuple(sorted(cats)), _positions(predicted, set(cats)))
              for _, _, cats in sorted(bins, key=lambda b: b[1]) if cats]
    return shards if len(shards) > 1 else None


def _object_categories(annotations: list[Any]) -> Counter:
    """Ground-truth objects per category, for the balance only; an annotation without a plain
    integer category id counts as none (check_ground_truth refuses such a file)."""
    try:
        counts = Counter(map(itemgetter("category_id"), annotations))
    except (KeyError, TypeError):
        counts = Counter(ann.get("category_id") for ann in annotations if isinstance(ann, dict)
                         and isinstance(ann.get("category_id"), int))
    return Counter({cat: n for cat, n in counts.items() if type(cat) is int})


def _positions(categories: list[Any], wanted: set[Any]) -> list[int]:
    """Where the predictions of the `wanted` categories stand, in order."""
    return [i for i, cat in enumerate(categories) if cat in wanted]


def merge(scored: list[Scored | InputError]) -> Scored:
    """The shards' arrays side by side, in category id order (COCOeval's params.catIds order).

    Raises the error of the first shard (in plan_shards' order) that found a bad prediction.
    """
    for part in scored:
        if isinstance(part, InputError):
            raise part
    parts: list[Scored] = scored  # type: ignore[assignment]
    if len(parts) == 1:
        return parts[0]
    categories = np.concatenate([part.categories for part in parts])
    order = np.argsort(categories, kind="stable")
    first = parts[0]
    return Scored(
        precision=np.concatenate([part.precision for part in parts], axis=2)[:, :, order],
        recall=np.concatenate([part.recall for part in parts], axis=1)[:, order],
        categories=tuple(int(c) for c in categories[order]),
        iou_thresholds=first.iou_thresholds, recall_thresholds=first.recall_thresholds, max_dets=first.max_dets,
    )


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
