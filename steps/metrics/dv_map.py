"""dv_mAP, the original project's divided-polygon mAP: mask AP@IoU that also checks the shape.

A detection matches a ground truth of its class only if their mask IoU reaches `iou_threshold`
and, for classes that are sliced, the IoU inside each of `slices` bands along the ground truth's
long axis reaches `slice_iou` (see steps.metrics.slices). Matching is greedy per image and class
in descending score order, each ground truth matched at most once (to the highest-IoU eligible
one); AP per class is COCO's 101-point interpolated AP; dv_mAP is the mean over classes with
ground truth. Definitions and a worked example: docs/metrics.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from steps.masks import decode, iou_matrix
from steps.metrics.average_precision import average_precision
from steps.metrics.ground_truth import Image, by_category, index
from steps.metrics.slices import slice_ious


def dv_map(
    gt: dict[str, Any],
    results: list[dict[str, Any]],
    slices: int = 3,
    iou_threshold: float = 0.5,
    slice_iou: float = 0.5,
    classes: list[str] | None = None,
) -> dict[str, Any]:
    """{"dv_mAP": float, "per_class": {name: AP}}.

    `classes` names the classes the slicing rule applies to; None slices every class (the
    original code's rule). The pipeline slices only the plate class: characters are a few pixels
    wide, where a slice IoU measures rasterisation noise rather than shape. Other classes still
    count, matched by mask IoU alone. Classes without ground truth are omitted; dv_mAP is NaN when
    no class has ground truth.
    """
    names, per_image = dv_matches(gt, results, slices, iou_threshold, slice_iou, classes)
    return dv_summary(names, per_image, list(range(len(gt.get("images", [])))))


# Per class, per image of the ground truth (in its order): the scores of the image's predictions
# of that class (in the results' order), which of them matched, and the image's objects.
Matches = dict[int, list[tuple[list[float], list[bool], int]]]


def dv_matches(gt: dict[str, Any], results: list[dict[str, Any]], slices: int = 3, iou_threshold: float = 0.5,
               slice_iou: float = 0.5, classes: list[str] | None = None) -> tuple[dict[int, str], Matches]:
    """Each image's greedy matches, per class: what dv_map ranks over all images. Matching is per
    image, so a resample of the images (the bootstrap) is ranked from these without matching again."""
    if slices < 1:
        raise ValueError(f"slices must be >= 1, got {slices}")
    data = index(gt, results, needs=("segmentation",))
    sliced = set(data.names) if classes is None else data.category_ids(classes, "dv_map classes")
    matches: Matches = {cid: [] for cid in data.names}
    for image in data.images.values():
        truths = by_category(image.annotations)
        predicted = by_category(image.predictions)
        for cid in data.names:
            preds = predicted.get(cid, [])
            needed = slice_iou if cid in sliced else None
            hits = _match(image, truths.get(cid, []), preds, iou_threshold, needed, slices) if preds else []
            matches[cid].append(([float(p["score"]) for p in preds], hits, len(truths.get(cid, []))))
    return data.names, matches


def dv_summary(names: dict[int, str], matches: Matches, images: list[int]) -> dict[str, Any]:
    """dv_map's figures over `images` (positions in the ground truth, repeats allowed, in order)."""
    per_class = {}
    for cid, name in names.items():
        own = [matches[cid][i] for i in images]
        objects = sum(count for _, _, count in own)
        if objects:
            per_class[name] = average_precision([s for scores, _, _ in own for s in scores],
                                                [h for _, hits, _ in own for h in hits], objects)
    mean = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return {"dv_mAP": mean, "per_class": per_class}


def _match(
    image: Image,
    truths: list[dict[str, Any]],
    preds: list[dict[str, Any]],
    iou_threshold: float,
    slice_iou: float | None,
    slices: int,
) -> list[bool]:
    """Greedy matching of one image and class; True per prediction (in the given order) that matched."""
    matched = [False] * len(preds)
    if not truths:
        return matched
    gt_rles = [image.rle(ann) for ann in truths]
    pred_rles = [image.rle(p) for p in preds]
    ious = iou_matrix(pred_rles, gt_rles)
    taken = [False] * len(truths)
    gt_masks: dict[int, np.ndarray] = {}
    order = np.argsort([-float(p["score"]) for p in preds], kind="mergesort")
    for i in order:
        pred_mask = None
        for j in np.argsort(-ious[i], kind="mergesort"):
            if ious[i, j] < iou_threshold:
                break
            if taken[j]:
                continue
            if slice_iou is not None:
                pred_mask = decode(pred_rles[i]) if pred_mask is None else pred_mask
                if j not in gt_masks:
                    gt_masks[j] = decode(gt_rles[j])
                gt_mask = gt_masks[j]
                points = _outline_points(truths[j], gt_mask)
                if slice_ious(gt_mask, pred_mask, points, slices).min() < slice_iou:
                    continue
            taken[j] = matched[i] = True
            break
    return matched


def _outline_points(ann: dict[str, Any], mask: np.ndarray) -> np.ndarray:
    """(N, 2) x/y points giving the ground truth's axis and extent: polygon vertices, else pixel centres."""
    segmentation = ann["segmentation"]
    if isinstance(segmentation, list) and segmentation:
        return np.concatenate([np.asarray(poly, dtype=np.float64).reshape(-1, 2) for poly in segmentation])
    rows, cols = np.nonzero(mask)
    return np.stack([cols + 0.5, rows + 0.5], axis=1)
