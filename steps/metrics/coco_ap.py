"""COCO bbox / segm average precision with faster-coco-eval (pycocotools' numbers, faster).

AP is averaged over IoU 0.50:0.95, at most 100 detections per image, exactly as pycocotools.
Values pycocotools reports as -1 (no ground truth in that area range) are NaN here.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from faster_coco_eval import COCO, COCOeval_faster
from faster_coco_eval.core import mask as _coco_mask

from steps.errors import InputError
from steps.masks import polygons_to_rle, segmentation_to_rle
from steps.metrics.coco_shards import Job, Scored, Shard, merge, plan_shards, summarize
from steps.metrics.ground_truth import check_masks_present, check_results, rle_areas_of
from steps.parallel import gc_paused, parallel_map_shared

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
    curves: bool = False, recall: bool = False, workers: int | None = None, checked: bool = False,
    segm_area: SegmArea = "pycocotools",
) -> dict[str, Any]:
    """{"AP", "AP50", "AP75", "APs", "APm", "APl", "per_class": {name: AP}, "per_class50": ...,
    "per_class75": ...}, floats in [0, 1].

    `per_class` is AP@[.50:.95] of each category that has ground truth (others are omitted),
    read from the precision array as pycocotools/detectron2 do; `per_class50`/`per_class75` the
    same at IoU 0.50/0.75. `verbose` prints the libraries' usual summary table. `curves` adds
    "pr50": the precision/recall curve at IoU 0.50 per class. `recall` adds AR1 ... ARl.

    Large inputs are scored in `workers` processes (default: the available cores), each with a
    share of the categories (see `steps.metrics.coco_shards`); the numbers do not change.

    `checked`: the caller has already passed `results` through check_results against these
    images and categories (the promotion bootstrap checks once and then scores resamples of them
    hundreds of times). Never for anything read from outside since: the C mask code trusts it.

    `segm_area`: where a segm result's area comes from (see SegmArea); the default gives
    pycocotools' twelve figures for any results file, `mask` detectron2's.
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    if segm_area not in SEGM_AREAS:
        raise ValueError(f"segm_area must be one of {SEGM_AREAS}, got {segm_area!r}")
    if iou_type == "segm":
        check_masks_present(gt)
    job = Job(gt, results, iou_type, _image_sizes(gt),
              tuple(c["id"] for c in gt["categories"]), checked, box_areas(results, iou_type, segm_area))
    with gc_paused():
        shards = plan_shards(gt, results, 1 if verbose else workers, iou_type)
        if shards is None:
            evaluated = [evaluate_shard(job, None, print if verbose else _silent)]
        else:
            evaluated = parallel_map_shared(evaluate_shard, job, shards, len(shards))
    scored = merge(evaluated)  # raises a bad prediction's error, named by its place in `results`
    summary = summarize(scored, recall)
    extra = {"pr50": _pr_curves(scored, gt)} if curves else {}
    per_class = {f"per_class{suffix}": _per_class(scored, gt, ious) for suffix, ious in PER_CLASS_IOUS.items()}
    return {**summary, **per_class, **extra}


def evaluate_shard(job: Job, shard: Shard | None, say: Any = None) -> Scored | InputError:
    """Check and score the predictions of `shard`'s categories (all of them for None).

    Returns the shard's first bad prediction's error rather than raising it: a worker's exception
    would come back wrapped in the pool's traceback.
    """
    say = say or _silent
    if shard is None:
        results, positions, gt = job.results, None, job.gt
    else:
        results = [job.results[i] for i in shard.results]
        positions = shard.results
        wanted = set(shard.categories)
        gt = {**job.gt, "annotations": [ann for ann in job.gt.get("annotations", []) if ann.get("category_id") in wanted]}
    areas: dict[int, int] = {}  # mask areas by position in `results`, from the RLE check's decode
    if not job.checked:
        areas = rle_areas_of(results) if job.iou_type == "segm" else {}
        try:
            check_results(results, job.sizes, job.categories, needs=_needed(job.iou_type, job.box_areas),
                          unread=_unused(job.iou_type, job.box_areas), positions=positions, rle_areas=areas)
        except InputError as error:
            return error
    predicted = {(res["image_id"], res["category_id"]) for res in results}
    coco_gt = COCO(_private_copy(gt, predicted), print_function=say)
    coco_dt = _load_results(coco_gt, results, job.iou_type, job.sizes, areas, say, job.box_areas)
    evaluator = COCOeval_faster(coco_gt, coco_dt, job.iou_type, print_function=say)
    # The library's IoU threads contend for the GIL (slower than one thread on 2 cores, measured
    # by scripts/bench.py); the cores are used by the category shards instead.
    evaluator.rle_iou_max_workers = 1
    if shard is not None:
        evaluator.params.catIds = list(shard.categories)
    evaluator.evaluate()
    evaluator.accumulate()
    if say is not _silent:
        evaluator.summarize()  # the library's table, for verbose
    params = evaluator.params
    return Scored(np.asarray(evaluator.eval["precision"]), np.asarray(evaluator.eval["recall"]),
                  tuple(int(c) for c in params.catIds), np.asarray(params.iouThrs), np.asarray(params.recThrs),
                  tuple(int(n) for n in params.maxDets))


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


def _load_results(coco_gt: COCO, results: list[dict[str, Any]], iou_type: IouType,
                  sizes: dict[int, tuple[int, int]], areas: dict[int, int], say: Any, by_box: bool = False) -> COCO:
    """What `COCO.loadRes` builds from copies of `results`, built in one pass of new dicts.

    Only the fields the evaluator reads are copied (the caller's dicts stay untouched: the
    evaluator writes into the ones it gets). For segm the area is the box's when `by_box`
    (pycocotools' loadRes, results that carry boxes), else the mask's (detectron2's evaluator):
    from the check's decode (`areas`, by position in `results`), or one C call for the others;
    no box is made (loadRes makes one that segm scoring never reads); polygon segmentations
    (pycocotools evaluates them too) become RLEs of their image's size, rasterised as COCO does.
    For bbox the area is the box's, and no mask is built.
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
        if by_box:
            areas = {i: res["bbox"][2] * res["bbox"][3] for i, res in enumerate(results)}
        else:
            rest = [i for i in range(len(results)) if i not in areas]
            areas = {**areas, **dict(zip(rest, _coco_mask.area([rles[i] for i in rest]) if rest else ()))}
        # The mask goes in as "rle", the field COCOeval_faster's computeIoU reads, and not as
        # "segmentation": from that its _prepare would rebuild "rle" by decoding the string and
        # encoding the same runs again (calculateRleForAllAnnotations), a fifth of a segm run.
        annotations = [
            {"image_id": res["image_id"], "category_id": res["category_id"], "score": res["score"],
             "rle": rle, "area": float(areas[i - 1]), "id": i, "iscrowd": 0}
            for i, (res, rle) in enumerate(zip(results, rles), start=1)
        ]
    coco_dt = COCO(print_function=say)
    coco_dt.dataset = {"images": list(coco_gt.dataset["images"]), "categories": list(coco_gt.dataset["categories"]),
                       "annotations": annotations}
    coco_dt.createIndex()
    return coco_dt


def check_predictions(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: IouType,
                      segm_area: SegmArea = "pycocotools") -> None:
    """Raise an InputError naming the first prediction coco_evaluate(gt, results, iou_type) would
    refuse (scoring in class shards, coco_evaluate names the first of the first shard that has one).

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


def with_mask_rles(gt: dict[str, Any]) -> dict[str, Any]:
    """`gt` with each polygon segmentation rasterised, once, to its compressed RLE.

    COCO scores of the copy are the original's (the same C rasteriser, and the evaluator scores
    masks only); scoring it again and again (the promotion bootstrap) no longer rasterises the
    same polygons each time. Metrics that read the polygons themselves (dv_mAP, EIR) need `gt`.
    """
    sizes = _image_sizes(gt)
    return {**gt, "annotations": [
        {**ann, "segmentation": polygons_to_rle(ann["segmentation"], *sizes[ann["image_id"]])}
        if _plain_polygons(ann.get("segmentation")) and ann.get("image_id") in sizes else ann
        for ann in gt.get("annotations", [])
    ]}


def _plain_polygons(segmentation: Any) -> bool:
    # Polygons of 3 points or more, which polygons_to_rle rasterises exactly as the evaluator
    # does; anything else stays as it is, for the evaluator.
    return isinstance(segmentation, list) and bool(segmentation) and all(
        isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in segmentation)


def _private_copy(gt: dict[str, Any], predicted: set[tuple[Any, Any]]) -> dict[str, Any]:
    """The evaluator's own copies of the annotations (it writes flags and RLEs into them).

    A mask given as a compressed RLE goes in as the "rle" the evaluator scores with, as the
    predictions' do (see _load_results); polygons stay "segmentation", for it to rasterise. An
    object of an (image, category) pair with no prediction in `predicted` goes in without its
    mask: nothing is matched against it (COCOeval computes IoUs only for pairs that have both),
    it counts as a miss by its area and flags alone, and rasterising it would be wasted.
    """
    copies = []
    for ann in gt.get("annotations", []):
        copy = dict(ann)
        for derived in ("rle", "boundary"):  # the evaluator's own fields: never taken from a file
            copy.pop(derived, None)
        segmentation = copy.pop("segmentation", None)
        if (ann.get("image_id"), ann.get("category_id")) not in predicted or segmentation is None:
            pass
        elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), (str, bytes)):
            copy["rle"] = segmentation
        else:
            copy["segmentation"] = segmentation
        copies.append(copy)
    return {**gt, "annotations": copies}


def _silent(*_args: object, **_kwargs: object) -> None:
    return None
