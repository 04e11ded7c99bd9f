"""Time coco_evaluate (faster-coco-eval) against pycocotools' COCOeval on synthetic data.

Builds N images of ground-truth polygons and jittered predictions (some wrong class, some false
positives), evaluates bbox and segm with both, prints seconds and speed-up, and checks that the
APs agree. Not a test: run it by hand, e.g.

    .venv/bin/python scripts/bench_coco_eval.py --images 5000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not
from steps.masks import polygons_to_rle  # noqa: E402
from steps.metrics import coco_evaluate  # noqa: E402

HEIGHT, WIDTH = 480, 640
NAMES = ["plate", "0", "1", "2", "3", "4"]


def rotated_box(rng: np.random.Generator, w: float, h: float) -> np.ndarray:
    angle = rng.uniform(-0.5, 0.5)
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = [rng.uniform(w / 2, WIDTH - w / 2), rng.uniform(h / 2, HEIGHT - h / 2)]
    return corners @ rot.T + centre


def build(images: int, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    gt: dict[str, Any] = {"images": [], "annotations": [],
                          "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)]}
    results: list[dict[str, Any]] = []
    for image_id in range(1, images + 1):
        gt["images"].append({"id": image_id, "file_name": f"{image_id}.jpg", "height": HEIGHT, "width": WIDTH})
        for _ in range(rng.integers(1, 9)):
            points = rotated_box(rng, rng.uniform(6, 300), rng.uniform(6, 120))
            poly = [round(float(v), 2) for v in points.ravel()]
            xs, ys = points[:, 0], points[:, 1]
            category = int(rng.integers(1, len(NAMES) + 1))
            gt["annotations"].append({
                "id": len(gt["annotations"]) + 1, "image_id": image_id, "category_id": category,
                "segmentation": [poly], "area": float((xs.max() - xs.min()) * (ys.max() - ys.min())),
                "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs)), float(np.ptp(ys))], "iscrowd": 0,
            })
            for _ in range(rng.integers(0, 3)):
                jittered = points + rng.normal(0, rng.uniform(0.5, 8), points.shape)
                wrong = rng.random() < 0.1
                results.append(_result(image_id, int(rng.integers(1, len(NAMES) + 1)) if wrong else category,
                                       jittered, rng))
        for _ in range(rng.integers(0, 3)):
            results.append(_result(image_id, int(rng.integers(1, len(NAMES) + 1)), rotated_box(rng, 40, 20), rng))
    return gt, results


def _result(image_id: int, category: int, points: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    xs, ys = np.clip(points[:, 0], 0, WIDTH), np.clip(points[:, 1], 0, HEIGHT)
    return {"image_id": image_id, "category_id": category, "score": float(rng.random()),
            "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs)), float(np.ptp(ys))],
            "segmentation": polygons_to_rle([points.ravel().tolist()], HEIGHT, WIDTH)}


def pycocotools_evaluate(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str) -> dict[str, Any]:
    """pycocotools on the same input (segm results keep their boxes: loadRes takes their areas from
    them, as coco_evaluate does by default)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
        coco_gt.createIndex()
        unused = "segmentation" if iou_type == "bbox" else ""
        coco_dt = coco_gt.loadRes([{k: v for k, v in r.items() if k != unused} for r in results])
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    summary = dict(zip(("AP", "AP50", "AP75", "APs", "APm", "APl"), (float(s) for s in evaluator.stats[:6])))
    precision = evaluator.eval["precision"]
    per_class = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        values = precision[:, :, k, 0, -1]
        if (values > -1).any():
            per_class[coco_gt.cats[cat_id]["name"]] = float(values[values > -1].mean())
    return {**summary, "per_class": per_class}


def largest_difference(ours: dict[str, Any], theirs: dict[str, Any]) -> float:
    pairs = [(ours[k], theirs[k]) for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")]
    pairs += [(ours["per_class"].get(name, math.nan), value) for name, value in theirs["per_class"].items()]
    return max(0.0 if (math.isnan(a) and b < 0) else abs(a - b) for a, b in pairs)


def timed(function: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000, help="synthetic images (default 5000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    gt, results = build(args.images, args.seed)
    print(f"{args.images} images, {len(gt['annotations'])} ground-truth objects, {len(results)} predictions")
    print(f"{'iou':5} {'pycocotools s':>14} {'faster s':>9} {'speed-up':>9} {'AP':>7} {'max |diff|':>11}")
    for iou_type in ("bbox", "segm"):
        reference_s, theirs = timed(pycocotools_evaluate, gt, results, iou_type)
        ours_s, ours = timed(coco_evaluate, gt, results, iou_type)
        diff = largest_difference(ours, theirs)
        print(f"{iou_type:5} {reference_s:14.2f} {ours_s:9.2f} {reference_s / ours_s:8.1f}x "
              f"{ours['AP']:7.4f} {diff:11.1e}{'' if diff < 1e-6 else '  MISMATCH'}")


if __name__ == "__main__":
    main()
