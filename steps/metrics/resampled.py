"""The metrics of many resamples of one split (images drawn with replacement), from work done once.

A resample's COCO scores are pycocotools' on a ground truth of the drawn images (a repeated
image becomes a new image id, in draw order, as steps/evaluate/bootstrap.py `_resample` builds
it). COCOeval matches each (image, category) on its own (`evaluateImg`), so a repeated image
repeats its matches; only `accumulate` sees the whole resample: the drawn images' detections in
draw order, ranked by score (a stable sort: ties keep that order). So the matching runs once, on
the whole split (hotcoco's evaluate, the IoUs and masks included), and each resample is an
accumulation of the drawn images' matches, written here after pycocotools' `accumulate`, with
array operations: the same arrays, bit for bit (tests/test_resampled.py compares them).

EIR is a count of plates read exactly: each image's plates and exact reads are counted once and
a resample sums them. dv_mAP matches per image too (steps/metrics/dv_map.py): each image's
matches are made once and a resample ranks the drawn images' ones.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from steps.config import EvaluateConfig
from steps.metrics.coco_ap import PER_CLASS_IOUS, _as_read, _engine, _image_sizes, _per_class, box_areas, check_predictions
from steps.metrics.coco_stats import Scored, summarize
from steps.metrics.eir import eir
from steps.metrics.dv_map import dv_matches, dv_summary
from steps.metrics.summary import _has_plates, above_threshold


# The summary figures read in an area range other than "all" (its index in params.areaRng).
AREA_FIGURES = {"APs": 1, "APm": 2, "APl": 3}


@dataclass(frozen=True)
class _Matches:
    """One category's detections on the split, every image's in a row (as evaluateImg keeps them:
    best score first, at most maxDets), with their matches per IoU threshold and area range."""

    scores: np.ndarray  # [detections]
    starts: np.ndarray  # [images + 1]: image i's detections are starts[i]:starts[i + 1]
    matched: np.ndarray  # [areas, thresholds, detections] bool
    ignored: np.ndarray  # [areas, thresholds, detections] bool
    objects: np.ndarray  # [areas, images]: objects that count (gtIgnore 0)
    seen: np.ndarray  # [areas, images] bool: evaluateImg made an entry (not None)


class CocoResampler:
    """pycocotools' precision array, and the figures family_metrics reports, of any resample."""

    def __init__(self, gt: dict[str, Any], results: list[dict[str, Any]], family: str, checked: bool = False) -> None:
        if not checked:
            check_predictions(gt, results, family)  # type: ignore[arg-type]
        self.family, self.gt = family, gt
        engine = _engine()
        coco_gt = engine.COCO(gt)
        read = _as_read(results, family, box_areas(results, family, "pycocotools"), _image_sizes(gt))  # type: ignore[arg-type]
        evaluator = engine.COCOeval(coco_gt, coco_gt.load_res(read), family)
        evaluator.evaluate()
        params = evaluator.params
        self.categories = tuple(int(c) for c in params.cat_ids)
        self.iou_thresholds = np.asarray(params.iou_thrs)
        self.recall_thresholds = np.asarray(params.rec_thrs)
        self.max_dets = tuple(int(n) for n in params.max_dets)
        self.areas = [tuple(a) for a in params.area_rng]
        images = [int(i) for i in params.img_ids]
        self._matches = self._index(evaluator.eval_imgs, images)

    def _index(self, entries: list[dict[str, Any]], images: list[int]) -> dict[int, _Matches]:
        position = {image: i for i, image in enumerate(images)}
        area_of = {area: a for a, area in enumerate(self.areas)}
        thresholds = len(self.iou_thresholds)
        by_category: dict[int, list[dict[str, Any]]] = {c: [] for c in self.categories}
        for entry in entries:
            if entry is not None:
                by_category[int(entry["category_id"])].append(entry)
        matches = {}
        for category, own in by_category.items():
            per_image: dict[int, dict[int, dict[str, Any]]] = {}
            for entry in own:
                per_image.setdefault(position[int(entry["image_id"])], {})[area_of[tuple(entry["aRng"])]] = entry
            counts = np.zeros(len(images) + 1, dtype=np.int64)
            scores, matched, ignored = [], [[] for _ in self.areas], [[] for _ in self.areas]
            objects = np.zeros((len(self.areas), len(images)), dtype=np.int64)
            seen = np.zeros((len(self.areas), len(images)), dtype=bool)
            for i in range(len(images)):
                by_area = per_image.get(i, {})
                first = next(iter(by_area.values()), None)
                detections = len(first["dtScores"]) if first else 0
                counts[i + 1] = detections
                if first:
                    scores.extend(first["dtScores"])
                for a in range(len(self.areas)):
                    entry = by_area.get(a)
                    if entry is None:
                        continue
                    seen[a, i] = True
                    objects[a, i] = sum(1 for flag in entry["gtIgnore"] if not flag)
                    if detections:
                        matched[a].append(np.asarray(entry["dtMatches"], dtype=np.float64).reshape(thresholds, -1) != 0)
                        ignored[a].append(np.asarray(entry["dtIgnore"], dtype=bool).reshape(thresholds, -1))
            total = int(counts.sum())
            # Every area's entry lists the image's same detections (evaluateImg ignores, not drops).
            stack = [np.concatenate(m, axis=1) if m else np.zeros((thresholds, 0), dtype=bool) for m in matched]
            ignore = [np.concatenate(m, axis=1) if m else np.zeros((thresholds, 0), dtype=bool) for m in ignored]
            if any(s.shape[1] != total for s in stack):
                raise ValueError("resampling: an image's detections differ between area ranges")
            matches[category] = _Matches(np.asarray(scores, dtype=np.float64), np.cumsum(counts), np.stack(stack),
                                         np.stack(ignore), objects, seen)
        return matches

    def scored(self, drawn: np.ndarray, areas: tuple[int, ...] | None = None) -> Scored:
        """COCOeval's precision of the resample (recall left at -1: AP figures only), at the
        largest maxDets, as `accumulate` fills it; of the `areas` ranges only (indexes into
        params.areaRng; None: all), the others left at -1."""
        thresholds, recalls = len(self.iou_thresholds), len(self.recall_thresholds)
        precision = -np.ones((thresholds, recalls, len(self.categories), len(self.areas), len(self.max_dets)))
        top = len(self.max_dets) - 1
        for k, category in enumerate(self.categories):
            m = self._matches[category]
            starts, ends = m.starts[drawn], m.starts[drawn + 1]
            sizes = ends - starts
            taken = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
            order = taken[np.argsort(-m.scores[taken], kind="mergesort")]
            for a in range(len(self.areas)) if areas is None else areas:
                if not m.seen[a, drawn].any():
                    continue
                counted = int(m.objects[a, drawn].sum())
                if counted == 0:
                    continue
                precision[:, :, k, a, top] = self._curve(m.matched[a][:, order], m.ignored[a][:, order], counted)
        return Scored(precision, -np.ones((thresholds, len(self.categories), len(self.areas), len(self.max_dets))),
                      self.categories, self.iou_thresholds, self.recall_thresholds, self.max_dets)

    def _curve(self, matched: np.ndarray, ignored: np.ndarray, counted: int) -> np.ndarray:
        """accumulate's interpolated precision at each recall threshold, per IoU threshold."""
        kept = ~ignored
        tp = np.cumsum(matched & kept, axis=1).astype(np.float64)
        fp = np.cumsum(~matched & kept, axis=1).astype(np.float64)
        out = np.zeros((len(self.iou_thresholds), len(self.recall_thresholds)))
        if tp.shape[1] == 0:
            return out
        recall = tp / counted
        precision = tp / (fp + tp + np.spacing(1))
        precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
        for t in range(len(self.iou_thresholds)):
            where = np.searchsorted(recall[t], self.recall_thresholds, side="left")
            inside = where < tp.shape[1]
            out[t, inside] = precision[t, where[inside]]
        return out

    def metrics(self, drawn: np.ndarray, keys: frozenset[str] | None = None) -> dict[str, float]:
        """What family_metrics(family, resampled gt, resampled results) reports; with `keys`, at
        least those (the area ranges the others need are not accumulated)."""
        areas = None
        if keys is not None:  # APs, APm, APl read their own range; every other figure reads "all"
            wanted = {AREA_FIGURES.get(key.removeprefix(f"{self.family}/"), 0) for key in keys}
            areas = tuple(sorted(wanted))
        scored = self.scored(drawn, areas)
        metrics = {f"{self.family}/{key}": value for key, value in summarize(scored).items()}
        for suffix, ious in PER_CLASS_IOUS.items():
            metrics.update({f"{self.family}/AP{suffix}-{name}": value
                            for name, value in _per_class(scored, self.gt, ious).items()})
        return metrics


class EirResampler:
    """EIR of any resample: the drawn images' exact reads over their plates."""

    def __init__(self, gt: dict[str, Any], results: list[dict[str, Any]], config: EvaluateConfig) -> None:
        read = eir(gt, results, plate_label=config.plate_label, read_score=config.read_score,
                   char_nms_iou=config.char_nms_iou)
        position = {int(image["id"]): i for i, image in enumerate(gt["images"])}
        self.plates = np.zeros(len(position), dtype=np.int64)
        self.exact = np.zeros(len(position), dtype=np.int64)
        for entry in read["reads"]:
            self.plates[position[int(entry["image_id"])]] += 1
            self.exact[position[int(entry["image_id"])]] += entry["read"] == entry["truth"]

    def metrics(self, drawn: np.ndarray, keys: frozenset[str] | None = None) -> dict[str, float]:
        plates = int(self.plates[drawn].sum())
        return {"EIR": int(self.exact[drawn].sum()) / plates if plates else math.nan}


class DvResampler:
    """dv_mAP of any resample: each image's matches made once (steps/metrics/dv_map.py), ranked
    over the drawn images."""

    def __init__(self, gt: dict[str, Any], results: list[dict[str, Any]], config: EvaluateConfig) -> None:
        self.names, self.matches = dv_matches(gt, results, slices=config.dv_slices, iou_threshold=config.dv_mask_iou,
                                              slice_iou=config.dv_iou, classes=[config.plate_label])

    def metrics(self, drawn: np.ndarray, keys: frozenset[str] | None = None) -> dict[str, float]:
        dv = dv_summary(self.names, self.matches, drawn.tolist())
        return {"dv_mAP": dv["dv_mAP"], **{f"dv_AP-{name}": value for name, value in dv["per_class"].items()}}


class Resampled:
    """Every metric of `families` on any resample of one model's predictions, in one pass, from
    work done once (see above). `keys`: only these are wanted (the promotion bootstrap's one);
    None: all. `checked`: the results already passed check_predictions for the COCO families."""

    def __init__(self, gt: dict[str, Any], results: list[dict[str, Any]], config: EvaluateConfig,
                 families: tuple[str, ...], checked: bool = False, keys: tuple[str, ...] | None = None) -> None:
        self.keys = None if keys is None else frozenset(keys)
        kept = above_threshold(results, config)
        plates = _has_plates(gt, config)  # dv_mAP and EIR are defined on a plate dataset only
        self.parts: list[Any] = []
        for family in families:
            if family in ("bbox", "segm"):
                self.parts.append(CocoResampler(gt, kept, family, checked))
            elif family == "EIR" and plates:
                self.parts.append(EirResampler(gt, kept, config))
            elif family == "dv" and plates:
                self.parts.append(DvResampler(gt, kept, config))

    def metrics(self, drawn: np.ndarray) -> dict[str, float]:
        """What family_metrics reports of each family, on the resample `drawn` (image positions)."""
        values: dict[str, float] = {}
        for part in self.parts:
            values.update(part.metrics(drawn, self.keys))
        return values if self.keys is None else {key: value for key, value in values.items() if key in self.keys}


def by_image(items: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        grouped[int(item["image_id"])].append(item)
    return grouped


def resample_gt(gt: dict[str, Any], images: list[dict[str, Any]], drawn: np.ndarray,
                annotations: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """A ground truth of the drawn images; a repeated image becomes a new image id (1, 2, ...)."""
    new_images, new_annotations = [], []
    for position, index in enumerate(drawn, start=1):
        image = images[index]
        new_images.append({**image, "id": position})
        for ann in annotations.get(int(image["id"]), []):
            new_annotations.append({**ann, "id": len(new_annotations) + 1, "image_id": position})
    return {**gt, "images": new_images, "annotations": new_annotations}


def resample_results(drawn: np.ndarray, images: list[dict[str, Any]], results: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The predictions of the drawn images, on resample_gt's image ids."""
    return [{**res, "image_id": position}
            for position, index in enumerate(drawn, start=1) for res in results.get(int(images[index]["id"]), [])]
