"""COCO bbox / segm average precision with faster-coco-eval (pycocotools' numbers, faster).

AP is averaged over IoU 0.50:0.95, at most 100 detections per image, exactly as pycocotools.
Values pycocotools reports as -1 (no ground truth in that area range) are NaN here.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from faster_coco_eval import COCO, COCOeval_faster
from faster_coco_eval.core import mask as _coco_mask

from steps.masks import segmentation_to_rle
from steps.metrics.ground_truth import check_results

IouType = Literal["bbox", "segm"]
SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")  # the first six COCO stats, in order
RECALL_KEYS = ("AR1", "AR10", "AR100", "ARs", "ARm", "ARl")  # the last six
# Per-class columns: AP over IoU 0.50:0.95 and at the two thresholds COCO reports (indexes into
# params.iouThrs = 0.50, 0.55, ..., 0.95).
PER_CLASS_IOUS = {"": slice(None), "50": slice(0, 1), "75": slice(5, 6)}


def coco_evaluate(
    gt: dict[str, Any], results: list[dict[str, Any]], iou_type: IouType, verbose: bool = False,
    curves: bool = False, recall: bool = False,
) -> dict[str, Any]:
    """{"AP", "AP50", "AP75", "APs", "APm", "APl", "per_class": {name: AP}, "per_class50": ...,
    "per_class75": ...}, floats in [0, 1].

    `per_class` is AP@[.50:.95] of each category that has ground truth (others are omitted),
    read from the precision array as pycocotools/detectron2 do; `per_class50`/`per_class75` the
    same at IoU 0.50/0.75. `verbose` prints the libraries' usual summary table. `curves` adds
    "pr50": the precision/recall curve at IoU 0.50 per class. `recall` adds AR1 ... ARl.
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    sizes = {img["id"]: (img["height"], img["width"]) for img in gt["images"]}
    check_results(results, sizes, (c["id"] for c in gt["categories"]),
                  needs=("bbox",) if iou_type == "bbox" else ("segmentation",), unread=(_unused(iou_type),))
    say = print if verbose else _silent
    coco_gt = COCO(_private_copy(gt), print_function=say)
    coco_dt = _load_results(coco_gt, results, iou_type, sizes, say)
    evaluator = COCOeval_faster(coco_gt, coco_dt, iou_type, print_function=say)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    summary = {key: _defined(value) for key, value in zip(SUMMARY_KEYS, evaluator.stats[:6])}
    if recall:
        summary.update({key: _defined(value) for key, value in zip(RECALL_KEYS, evaluator.stats[6:12])})
    extra = {"pr50": _pr_curves(evaluator, coco_gt)} if curves else {}
    per_class = {f"per_class{suffix}": _per_class(evaluator, coco_gt, ious) for suffix, ious in PER_CLASS_IOUS.items()}
    return {**summary, **per_class, **extra}


def _pr_curves(evaluator: COCOeval_faster, coco_gt: COCO) -> dict[str, dict[str, list[float]]]:
    """{class name: {"recall": [...], "precision": [...]}} at IoU 0.50, area all, 100 detections."""
    precision = np.asarray(evaluator.eval["precision"])
    recall = [float(r) for r in evaluator.params.recThrs]
    curves = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        values = precision[0, :, k, 0, -1]
        if (values > -1).any():
            curves[coco_gt.cats[cat_id]["name"]] = {"recall": recall, "precision": [max(float(v), 0.0) for v in values]}
    return curves


def _per_class(evaluator: COCOeval_faster, coco_gt: COCO, ious: slice) -> dict[str, float]:
    # precision: [IoU thresholds, recall thresholds, categories, area ranges, max dets];
    # area "all" is index 0, maxDets=100 the last; -1 marks "no ground truth".
    precision = np.asarray(evaluator.eval["precision"])
    per_class = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        values = precision[ious, :, k, 0, -1]
        values = values[values > -1]
        if values.size:
            per_class[coco_gt.cats[cat_id]["name"]] = float(values.mean())
    return per_class


def _load_results(coco_gt: COCO, results: list[dict[str, Any]], iou_type: IouType,
                  sizes: dict[int, tuple[int, int]], say: Any) -> COCO:
    """What `COCO.loadRes` builds from copies of `results`, built in one pass of new dicts.

    Only the fields the evaluator reads are copied (the caller's dicts stay untouched: the
    evaluator writes into the ones it gets). For segm the box and area come from the mask, in one
    C call each (detectron2 does the same: the area ranges use the mask area); polygon
    segmentations (pycocotools evaluates them too) become RLEs of their image's size, rasterised as
    COCO does. For bbox the area is the box's, and no mask is built.
    """
    if not results:
        return coco_gt.loadRes([])
    if iou_type == "bbox":
        annotations = [
            {"image_id": res["image_id"], "category_id": res["category_id"], "score": res["score"],
             "bbox": res["bbox"], "area": res["bbox"][2] * res["bbox"][3], "id": i, "iscrowd": 0}
            for i, res in enumerate(results, start=1)
        ]
    else:
        rles = [segmentation_to_rle(res["segmentation"], *sizes[res["image_id"]]) for res in results]
        annotations = [
            {"image_id": res["image_id"], "category_id": res["category_id"], "score": res["score"],
             "segmentation": rle, "area": float(area), "bbox": box.tolist(), "id": i, "iscrowd": 0}
            for i, (res, rle, area, box) in enumerate(
                zip(results, rles, _coco_mask.area(rles), np.asarray(_coco_mask.toBbox(rles), dtype=np.float64)), start=1)
        ]
    coco_dt = COCO(print_function=say)
    coco_dt.dataset = {"images": list(coco_gt.dataset["images"]), "categories": list(coco_gt.dataset["categories"]),
                       "annotations": annotations}
    coco_dt.createIndex()
    return coco_dt


def _unused(iou_type: IouType) -> str:
    """The result field an evaluation of `iou_type` neither checks nor reads."""
    return "bbox" if iou_type == "segm" else "segmentation"


def _private_copy(gt: dict[str, Any]) -> dict[str, Any]:
    # The evaluator caches RLEs and flags in the annotation dicts; keep the caller's clean.
    return {**gt, "annotations": [dict(ann) for ann in gt.get("annotations", [])]}


def _defined(value: float) -> float:
    return float("nan") if value < 0 else float(value)


def _silent(*_args: object, **_kwargs: object) -> None:
    return None
