"""Box IoUs of all pairs at once (steps/metrics/box_iou.py) against faster-coco-eval's own
computeIoU, pair by pair and bit for bit, and bbox AP through them against pycocotools."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
from faster_coco_eval import COCO, COCOeval_faster

from steps.metrics import coco_evaluate
from steps.metrics.box_iou import BoxIouEvaluator, pair_box_ious
from tests.test_metrics_coco import pycocotools_reference


def _hard_case(seed: int) -> tuple[dict, list[dict]]:
    """Boxes that test the order and the arithmetic: tied scores, one pair with more than 100
    detections (the cut), crowd objects, empty and touching boxes, integer and float corners."""
    rng = np.random.default_rng(seed)
    gt: dict = {"images": [{"id": i, "height": 100, "width": 120} for i in (1, 2, 3, 7)],
                "categories": [{"id": c, "name": f"c{c}"} for c in (1, 2, 5)], "annotations": []}
    results: list[dict] = []

    def box() -> list:
        x, y = (float(v) for v in rng.integers(0, 80, 2)) if rng.random() < 0.5 else rng.uniform(0, 80, 2).tolist()
        w, h = (float(v) for v in rng.integers(0, 40, 2)) if rng.random() < 0.5 else rng.uniform(0, 40, 2).tolist()
        return [x, y, w, h]

    for image in gt["images"]:
        for _ in range(int(rng.integers(3, 9))):
            b = box()
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image["id"],
                                      "category_id": int(rng.choice([1, 2, 5])), "bbox": b, "area": b[2] * b[3],
                                      "iscrowd": int(rng.random() < 0.2)})
    for ann in list(gt["annotations"]):
        for _ in range(int(rng.integers(0, 4))):
            x, y, w, h = ann["bbox"]
            jitter = rng.normal(0, 2, 4)
            moved = [x + jitter[0], y + jitter[1], max(0.0, w + jitter[2]), max(0.0, h + jitter[3])]
            results.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                            "score": float(rng.choice([0.5, 0.25, round(rng.random(), 2)])), "bbox": moved})
        touching = [ann["bbox"][0] + ann["bbox"][2], ann["bbox"][1], 5.0, 5.0]  # shares an edge: IoU 0
        results.append({"image_id": ann["image_id"], "category_id": ann["category_id"], "score": 0.5, "bbox": touching})
    crowded = gt["annotations"][0]
    for _ in range(130):  # > maxDets (100) in one pair
        results.append({"image_id": crowded["image_id"], "category_id": crowded["category_id"],
                        "score": float(round(rng.random(), 1)), "bbox": box()})
    order = rng.permutation(len(results))
    return gt, [results[i] for i in order]


def _library_evaluator(gt: dict, results: list[dict]) -> COCOeval_faster:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes([dict(r) for r in results])
        evaluator = COCOeval_faster(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
    return evaluator


@pytest.mark.parametrize("seed", range(6))
def test_every_pair_is_the_library_computeiou_bit_for_bit(seed: int) -> None:
    gt, results = _hard_case(seed)
    library = _library_evaluator(gt, results)
    ours = pair_box_ious(library.cocoGt.dataset["annotations"], library.cocoDt.dataset["annotations"], 100)
    theirs = {(int(i), int(c)): iou for (i, c), iou in library.ious.items() if len(iou)}
    assert ours.keys() == theirs.keys()
    assert max(v.shape[0] for v in ours.values()) == 100  # the cut was exercised
    for pair, expected in theirs.items():
        got = ours[pair]
        assert got.shape == np.shape(expected), pair
        assert got.tobytes() == np.asarray(expected, dtype=np.float64).tobytes(), pair


@pytest.mark.parametrize("seed", range(3))
def test_bbox_ap_through_them_equals_pycocotools(seed: int) -> None:
    gt, results = _hard_case(seed)
    expected_stats, expected_per_class = pycocotools_reference(gt, results, "bbox")
    got = coco_evaluate(gt, results, "bbox", recall=True, workers=1)
    keys = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
    for key, expected in zip(keys, expected_stats):
        assert math.isnan(got[key]) if expected < 0 else got[key] == pytest.approx(expected, abs=1e-12), key
    assert got["per_class"] == pytest.approx(expected_per_class, abs=1e-12)


def test_fields_no_array_holds_go_to_the_library_as_they_are() -> None:
    # An unchecked ground truth: numpy would read "5" as 5.0 and "1" as 1; the library does not,
    # and an id beyond int64 it does handle. Either way the result (or the error) is the library's.
    def case(**change: object) -> tuple[dict, list[dict]]:
        ann = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0, **change}
        image = ann["image_id"]
        gt = {"images": [{"id": image, "height": 10, "width": 10}], "categories": [{"id": 1, "name": "a"}],
              "annotations": [ann]}
        return gt, [{"image_id": image, "category_id": 1, "score": 0.5, "bbox": [0, 0, 5, 5]}]

    for change in ({"bbox": [0, 0, "5", 5]}, {"image_id": 2**70}, {"bbox": [0, 0, 5]}):
        gt, results = case(**change)
        outcomes = []
        for evaluator in (BoxIouEvaluator, COCOeval_faster):
            with contextlib.redirect_stdout(io.StringIO()):
                coco_gt = COCO()
                coco_gt.dataset = gt
                coco_gt.createIndex()
                run = evaluator(coco_gt, coco_gt.loadRes([dict(r) for r in results]), "bbox")
                try:
                    run.evaluate()
                    run.accumulate()
                    outcomes.append(np.asarray(run.eval["precision"]).tobytes())
                except Exception as error:  # noqa: BLE001 (the library's own error, whatever it is)
                    outcomes.append(type(error))
        assert outcomes[0] == outcomes[1], change
