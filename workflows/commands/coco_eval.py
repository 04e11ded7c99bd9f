"""`trainyard coco-eval GT RESULTS`: COCO evaluation of a results file, as pycocotools computes it."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from steps.errors import InputError

SUMMARY_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("coco-eval", help="COCO AP of a results file against ground truth",
                       description="Evaluate COCO results (a list of detections) against a COCO ground-truth file: "
                       "AP, AP50, AP75, APs/APm/APl, AR1/AR10/AR100, ARs/ARm/ARl and per-class AP/AP50/AP75, equal to pycocotools' COCOeval.")
    p.add_argument("gt", type=Path, metavar="GT_JSON", help="COCO ground truth (images, annotations, categories)")
    p.add_argument("results", type=Path, metavar="RESULTS_JSON", help="COCO results: a list of detections")
    p.add_argument("--iou-type", choices=["bbox", "segm"], default="bbox", help="what to match (default bbox)")
    p.add_argument("--segm-area", choices=["pycocotools", "mask"], default="pycocotools",
                   help="segm only: the area that sorts a result into small/medium/large (APs/m/l, ARs/m/l). "
                   "pycocotools (default): its box's when the results carry boxes, as pycocotools' loadRes; "
                   "mask: its mask's, as detectron2's evaluator (which drops the boxes)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steps.blas_threads import one_blas_thread
    from steps.parallel import gc_paused

    # No cyclic garbage collection: each one would walk the million objects the files parse into
    # (a tenth of the CPU time on the bench's 5,000 images), and they hold no cycles.
    with gc_paused(), one_blas_thread():
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    from steps.jsonio import finite, read_json
    from steps.metrics import coco_evaluate

    from steps.metrics.ground_truth import check_ground_truth

    gt = read_json(args.gt, "ground truth")
    results = read_json(args.results, "results")
    try:
        check_ground_truth(gt, masks=args.iou_type == "segm")
    except InputError as exc:
        raise InputError(f"{args.gt}: {exc}") from None
    if isinstance(results, dict) and "annotations" in results:
        results = results["annotations"]  # tolerate a COCO-style file holding detections
    if not isinstance(results, list):
        raise InputError(f"{args.results}: expected a JSON list of detections")
    try:
        # Checks every detection first.
        summary = coco_evaluate(gt, results, args.iou_type, recall=True, segm_area=args.segm_area)
    except InputError as exc:
        raise InputError(f"{args.results}: {exc}") from None
    if args.json:
        areas = {"segm_area": args.segm_area} if args.iou_type == "segm" else {}
        print(json.dumps(finite({"iou_type": args.iou_type, **areas, **summary}), indent=2))
        return 0
    areas = {"pycocotools": ", result areas as pycocotools", "mask": ", mask areas"}[args.segm_area] if args.iou_type == "segm" else ""
    print(f"COCO {args.iou_type} evaluation: {len(results)} detections on {len(gt['images'])} images{areas}")
    for key in SUMMARY_KEYS:
        print(f"  {key:<6} {_fmt(summary[key])}")
    if summary["per_class"]:
        width = max(7, *(len(name) for name in summary["per_class"]))  # "per class" fits above the names
        print(f"  {'per class':<{width + 4}}{'AP':>6}  {'AP50':>6}  {'AP75':>6}")
        for name, value in summary["per_class"].items():
            cells = [_fmt(summary[f"per_class{s}"].get(name, math.nan)) for s in ("50", "75")]
            print(f"    {name:<{width}}  {_fmt(value)}  {'  '.join(cells)}")
    return 0


def _fmt(value: float) -> str:
    return "  n/a" if math.isnan(value) else f"{value:.4f}"
