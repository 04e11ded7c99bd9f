"""COCO bbox / segm average precision with hotcoco (pycocotools' numbers bit for bit, in Rust).

AP is averaged over IoU 0.50:0.95, at most 100 detections per image, exactly as pycocotools.
Values pycocotools reports as -1 (no ground truth in that area range) are NaN here.

hotcoco scores on a thread pool of its own, started at its first call: a process forked after
that must not call it (the pool's threads do not survive a fork), so `_engine` tells
`steps.parallel`, whose maps then stay in this process.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from steps.errors import InputError
from steps.masks import segmentation_to_rle
from steps.metrics.coco_stats import Scored, summarize
from steps.metrics.ground_truth import check_masks_present, check_results
from steps.parallel import gc_paused, threads_started

IouType = Literal["bbox", "segm"]
# Where a segm result's area (for APs/APm/APl, ARs/ARm/ARl) comes from. `pycocotools`: as its
# `COCO.loadRes`, the box's width x height when the results carry boxes (it looks at the first
# one), else the mask's; `mask`: always the mask's (detectron2's evaluator drops the boxes first).
SegmArea = Literal["pycocotools", "mask"]
SEGM_AREAS = ("pycocotools", "mask")
# Per-class columns: AP over IoU 0.50:0.95 and at the two thresholds COCO reports (indexes into
# params.iouThrs = 0.50, 0.55, ..., 0.95).
PER_CLASS_IOUS = {"": slice(None), "50": slice(0, 1), "75": slice(5, 6)}


def coco_evaluate(
    gt: dict[str, Any], results: list[dict[str, Any]], iou_type: IouType, verbose: bool = False,
    curves: bool = False, recall: bool = False, checked: bool = False, segm_area: SegmArea = "pycocotools",
) -> dict[str, Any]:
    """{"AP", "AP50", "AP75", "APs", "APm", "APl", "per_class": {name: AP}, "per_class50": ...,
    "per_class75": ...}, floats in [0, 1].

    `per_class` is AP@[.50:.95] of each category that has ground truth (others are omitted),
    read from the precision array as pycocotools/detectron2 do; `per_class50`/`per_class75` the
    same at IoU 0.50/0.75. `verbose` prints pycocotools' usual summary table. `curves` adds
    "pr50": the precision/recall curve at IoU 0.50 per class. `recall` adds AR1 ... ARl.

    `checked`: the caller has already passed `results` through check_predictions against these
    images and categories (the promotion bootstrap checks once and then scores resamples of them
    hundreds of times). Never for anything read from outside since.

    `segm_area`: where a segm result's area comes from (see SegmArea); the default gives
    pycocotools' twelve figures for any results file, `mask` detectron2's.
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    if segm_area not in SEGM_AREAS:
        raise ValueError(f"segm_area must be one of {SEGM_AREAS}, got {segm_area!r}")
    if iou_type == "segm":
        check_masks_present(gt)
    by_box = box_areas(results, iou_type, segm_area)
    sizes = _image_sizes(gt)
    if not checked:
        check_results(results, sizes, [c["id"] for c in gt["categories"]],
                      needs=_needed(iou_type, by_box), unread=_unused(iou_type, by_box))
    with gc_paused():
        scored = _score(gt, _as_read(results, iou_type, by_box, sizes), iou_type, verbose)
    summary = summarize(scored, recall)
    extra = {"pr50": _pr_curves(scored, gt)} if curves else {}
    per_class = {f"per_class{suffix}": _per_class(scored, gt, ious) for suffix, ious in PER_CLASS_IOUS.items()}
    return {**summary, **per_class, **extra}


def _score(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: IouType, verbose: bool) -> Scored:
    """pycocotools' COCOeval evaluate() and accumulate(), by hotcoco, on checked inputs."""
    engine = _engine()
    coco_gt = engine.COCO(gt)
    evaluator = engine.COCOeval(coco_gt, coco_gt.load_res(results), iou_type)
    evaluator.evaluate()
    evaluator.accumulate()
    if verbose:
        evaluator.summarize()  # pycocotools' table
    params, arrays = evaluator.params, evaluator.eval
    return Scored(np.asarray(arrays["precision"]), np.asarray(arrays["recall"]), tuple(int(c) for c in params.cat_ids),
                  np.asarray(params.iou_thrs), np.asarray(params.rec_thrs), tuple(int(n) for n in params.max_dets))


def _engine() -> Any:
    import hotcoco

    threads_started("hotcoco's thread pool")
    return hotcoco


def _as_read(results: list[dict[str, Any]], iou_type: IouType, by_box: bool,
             sizes: dict[int, tuple[int, int]]) -> list[dict[str, Any]]:
    """New dicts of the fields pycocotools' loadRes reads of each result for `iou_type`.

    bbox: the box (its area is the box's). segm: the mask, as a compressed RLE (polygons are
    rasterised at their image's size and run lists compressed, as pycocotools evaluates them),
    and the box when `by_box` (loadRes then takes the area from it; without it, from the mask).
    """
    if iou_type == "bbox":
        return [{"image_id": res["image_id"], "category_id": res["category_id"], "score": res["score"],
                 "bbox": res["bbox"]} for res in results]
    read = []
    for res in results:
        segmentation = res["segmentation"]
        if not (isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), str)):
            segmentation = segmentation_to_rle(segmentation, *sizes[res["image_id"]])
        item = {"image_id": res["image_id"], "category_id": res["category_id"], "score": res["score"],
                "segmentation": segmentation}
        if by_box:
            item["bbox"] = res["bbox"]
        read.append(item)
    return read


def _pr_curves(scored: Scored, gt: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """{class name: {"recall": [...], "precision": [...]}} at IoU 0.50, area all, 100 detections."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    recall = [float(r) for r in scored.recall_thresholds]
    curves = {}
    for k, cat_id in enumerate(scored.categories):
        values = scored.precision[0, :, k, 0, -1]
        if (values > -1).any():
            curves[names[cat_id]] = {"recall": recall, "precision": [max(float(v), 0.0) for v in values]}
    return curves


def _per_class(scored: Scored, gt: dict[str, Any], ious: slice) -> dict[str, float]:
    # precision: [IoU thresholds, recall thresholds, categories, area ranges, max dets];
    # area "all" is index 0, maxDets=100 the last; -1 marks "no ground truth".
    names = {c["id"]: c["name"] for c in gt["categories"]}
    per_class = {}
    for k, cat_id in enumerate(scored.categories):
        values = scored.precision[ious, :, k, 0, -1]
        values = values[values > -1]
        if values.size:
            per_class[names[cat_id]] = float(values.mean())
    return per_class


def check_predictions(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: IouType,
                      segm_area: SegmArea = "pycocotools") -> None:
    """Raise an InputError naming the first prediction coco_evaluate(gt, results, iou_type) would
    refuse.

    For callers that then score subsets of `results` (the promotion bootstrap), segm results must
    all carry a box or none: any subset then takes its areas from the same place.
    """
    by_box = box_areas(results, iou_type, segm_area)
    check_results(results, _image_sizes(gt), [c["id"] for c in gt["categories"]],
                  needs=_needed(iou_type, by_box), unread=_unused(iou_type, by_box))
    if iou_type == "segm" and segm_area == "pycocotools" and not by_box:
        boxed = next((i for i, res in enumerate(results) if _has_box(res)), None)
        if boxed is not None:
            raise InputError(f"predictions[{boxed}]: has a bbox but predictions[0] has none; give every "
                             "prediction its box or none (pycocotools takes the areas from the boxes when they are given)")


def box_areas(results: list[Any], iou_type: str, segm_area: str) -> bool:
    """Whether segm results get their box's area, as pycocotools' loadRes decides it: by whether
    the first result carries a (non-empty) bbox."""
    return iou_type == "segm" and segm_area == "pycocotools" and bool(results) and _has_box(results[0])


def _has_box(result: Any) -> bool:
    return isinstance(result, dict) and "bbox" in result and result["bbox"] != []


def _image_sizes(gt: dict[str, Any]) -> dict[int, tuple[int, int]]:
    return {img["id"]: (img["height"], img["width"]) for img in gt["images"]}


def _needed(iou_type: str, by_box: bool = False) -> tuple[str, ...]:
    """The result fields an evaluation of `iou_type` reads (segm by box areas: the box too)."""
    return ("bbox",) if iou_type == "bbox" else ("segmentation", "bbox") if by_box else ("segmentation",)


def _unused(iou_type: str, by_box: bool = False) -> tuple[str, ...]:
    """The result fields an evaluation of `iou_type` neither checks nor reads."""
    return ("segmentation",) if iou_type == "bbox" else () if by_box else ("bbox",)
