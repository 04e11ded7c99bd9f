"""dv_mAP on tiny hand-computed cases (numbers worked out in the comments and docs/metrics.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from steps.errors import ConfigError
from steps.masks import encode, polygons_to_mask
from steps.metrics import coco_evaluate, dv_map
from tests.test_metrics_coco import jittered_results, synthetic_gt

H, W = 60, 60
NAMES = ["plate", "A", "B"]


def rect(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def ground_truth(*objects: tuple[str, list[float]]) -> dict:
    """One H x W image holding the given (class name, polygon) objects."""
    anns = []
    for i, (name, poly) in enumerate(objects, start=1):
        xs, ys = poly[0::2], poly[1::2]
        anns.append({"id": i, "image_id": 1, "category_id": NAMES.index(name) + 1, "segmentation": [poly],
                     "area": float(polygons_to_mask([poly], H, W).sum()), "iscrowd": 0,
                     "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]})
    return {"images": [{"id": 1, "file_name": "1.jpg", "height": H, "width": W}], "annotations": anns,
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)]}


def prediction(name: str, score: float, poly: list[float] | None = None, mask: np.ndarray | None = None) -> dict:
    mask = polygons_to_mask([poly], H, W) if mask is None else mask
    rows, cols = np.nonzero(mask)
    box = [float(cols.min()), float(rows.min()), float(np.ptp(cols) + 1), float(np.ptp(rows) + 1)]
    return {"image_id": 1, "category_id": NAMES.index(name) + 1, "score": score, "bbox": box,
            "segmentation": encode(mask)}


# The plate of most cases: x in [10, 40), y in [20, 30) -> 30 x 10 = 300 pixels, axis = x.
PLATE = rect(10, 20, 40, 30)


def test_perfect_prediction_scores_one() -> None:
    got = dv_map(ground_truth(("plate", PLATE)), [prediction("plate", 0.9, PLATE)])
    assert got == {"dv_mAP": 1.0, "per_class": {"plate": 1.0}}


def test_left_two_thirds_passes_map50_but_fails_dv_map() -> None:
    gt = ground_truth(("plate", PLATE))
    # Covers x in [10, 30): IoU 200 / 300 = 0.667 >= 0.5, but the slice x in [30, 40) has IoU 0.
    results = [prediction("plate", 0.9, rect(10, 20, 30, 30))]
    coco = coco_evaluate(gt, results, "segm")
    # COCO: IoU 0.667 passes the thresholds 0.50, 0.55, 0.60, 0.65 of ten -> AP 0.4.
    assert (coco["AP50"], coco["AP75"], coco["AP"]) == (pytest.approx(1.0), 0.0, pytest.approx(0.4))
    assert dv_map(gt, results)["dv_mAP"] == 0.0
    assert dv_map(gt, results, classes=[])["dv_mAP"] == 1.0  # slicing off: plain mask AP50


def test_slice_iou_threshold_on_a_shifted_prediction() -> None:
    gt = ground_truth(("plate", PLATE))
    # Shifted right by 3 px (x in [13, 43)): whole IoU 27/33 = 0.82; slice IoUs 7/10, 10/10, 10/13.
    results = [prediction("plate", 0.9, rect(13, 20, 43, 30))]
    assert dv_map(gt, results, slice_iou=0.7)["dv_mAP"] == 1.0
    assert dv_map(gt, results, slice_iou=0.75)["dv_mAP"] == 0.0
    assert dv_map(gt, results, slice_iou=0.75, slices=1)["dv_mAP"] == 1.0  # one slice: the whole IoU
    assert dv_map(gt, results, iou_threshold=0.85, slice_iou=0.1)["dv_mAP"] == 0.0


def test_slices_follow_the_plate_axis_of_a_vertical_plate() -> None:
    gt = ground_truth(("plate", rect(20, 10, 30, 40)))  # tall: the axis is y
    # The top two thirds: every slice across x would still have IoU 2/3; along y the last is 0.
    results = [prediction("plate", 0.9, rect(20, 10, 30, 30))]
    assert dv_map(gt, results)["dv_mAP"] == 0.0
    assert dv_map(gt, [prediction("plate", 0.9, rect(20, 10, 30, 40))])["dv_mAP"] == 1.0


def test_rotated_plate_missing_its_far_end_fails() -> None:
    poly = [12.0, 30.0, 40.0, 14.0, 45.0, 22.0, 17.0, 38.0]  # a plate tilted by about 30 degrees
    gt_mask = polygons_to_mask([poly], H, W)
    rows, cols = np.nonzero(gt_mask)
    along = (cols + 0.5) * np.cos(np.radians(-30)) + (rows + 0.5) * np.sin(np.radians(-30))
    cut = gt_mask.copy()
    cut[rows[along > np.quantile(along, 0.75)], cols[along > np.quantile(along, 0.75)]] = False
    gt = ground_truth(("plate", poly))
    assert dv_map(gt, [prediction("plate", 0.9, mask=gt_mask)])["dv_mAP"] == 1.0
    assert coco_evaluate(gt, [prediction("plate", 0.9, mask=cut)], "segm")["AP50"] == pytest.approx(1.0)
    assert dv_map(gt, [prediction("plate", 0.9, mask=cut)])["dv_mAP"] == 0.0


def test_false_positive_ranked_first_halves_the_ap() -> None:
    gt = ground_truth(("plate", PLATE))
    hit, miss = prediction("plate", 0.8, PLATE), prediction("plate", 0.9, rect(10, 40, 40, 50))
    # Ranked FP then TP: precision 0.5 at recall 1, so every recall threshold reads 0.5.
    assert dv_map(gt, [hit, miss])["dv_mAP"] == pytest.approx(0.5)
    # Ranked TP first: precision 1 at recall 1.
    assert dv_map(gt, [{**hit, "score": 0.95}, miss])["dv_mAP"] == pytest.approx(1.0)


def test_each_ground_truth_matches_once() -> None:
    second = rect(10, 40, 40, 50)
    gt = ground_truth(("plate", PLATE), ("plate", second))
    results = [prediction("plate", 0.9, PLATE), prediction("plate", 0.8, PLATE), prediction("plate", 0.7, second)]
    # TP (P=1, R=.5), duplicate FP (P=.5, R=.5), TP (P=2/3, R=1):
    # recall thresholds 0..0.50 (51 of them) read 1, 0.51..1 (50) read 2/3.
    assert dv_map(gt, results)["dv_mAP"] == pytest.approx((51 + 50 * 2 / 3) / 101)


def test_only_named_classes_are_sliced() -> None:
    gt = ground_truth(("plate", PLATE), ("A", rect(12, 40, 21, 52)))
    # The top 2/3 of a tall character (its own axis is vertical): IoU 0.667, last slice 0.
    top_of_a = prediction("A", 0.9, rect(12, 40, 21, 48))
    results = [prediction("plate", 0.9, PLATE), top_of_a]
    assert dv_map(gt, results, classes=["plate"])["per_class"] == {"plate": 1.0, "A": 1.0}
    assert dv_map(gt, results)["per_class"] == {"plate": 1.0, "A": 0.0}  # None: every class sliced


def test_mean_over_classes_with_ground_truth_only() -> None:
    gt = ground_truth(("plate", PLATE), ("A", rect(12, 40, 21, 52)))
    results = [prediction("plate", 0.9, PLATE), prediction("B", 0.9, rect(40, 40, 50, 50))]  # B has no GT
    got = dv_map(gt, results)
    assert got["per_class"] == {"plate": 1.0, "A": 0.0}
    assert got["dv_mAP"] == 0.5


def test_empty_results_and_empty_ground_truth() -> None:
    assert dv_map(ground_truth(("plate", PLATE)), []) == {"dv_mAP": 0.0, "per_class": {"plate": 0.0}}
    assert math.isnan(dv_map(ground_truth(), [])["dv_mAP"])


def test_unknown_class_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'plaet' is not a category"):
        dv_map(ground_truth(("plate", PLATE)), [], classes=["plaet"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_without_slicing_it_is_coco_segm_ap50(seed: int) -> None:
    # Same greedy matching and 101-point interpolation as pycocotools at IoU 0.5.
    gt = synthetic_gt(seed)
    results = jittered_results(gt, seed + 100)
    assert dv_map(gt, results, classes=[])["dv_mAP"] == pytest.approx(coco_evaluate(gt, results, "segm")["AP50"])


def test_the_original_thresholds_are_a_setting_away() -> None:
    """evaluate.dv_mask_iou / dv_iou at 0.6 reproduce the original's thresholds (docs/metrics.md)."""
    from steps.config import load_config
    from steps.metrics import all_metrics

    gt = ground_truth(("plate", PLATE))
    shifted = [prediction("plate", 0.9, rect(13, 20, 43, 30))]  # whole IoU 0.82, slices 0.70, 1.0, 0.77
    ours = load_config().evaluate
    original = load_config(None, ["evaluate.dv_mask_iou=0.6", "evaluate.dv_iou=0.6"]).evaluate
    assert all_metrics(gt, shifted, ours)["dv_mAP"] == 1.0
    assert all_metrics(gt, shifted, original)["dv_mAP"] == 1.0
    strict = load_config(None, ["evaluate.dv_mask_iou=0.85"]).evaluate
    assert all_metrics(gt, shifted, strict)["dv_mAP"] == 0.0  # the whole-mask threshold is applied
    assert load_config(None, ["evaluate.dv_iou=0.75"]).evaluate.dv_iou == 0.75
    assert all_metrics(gt, shifted, load_config(None, ["evaluate.dv_iou=0.75"]).evaluate)["dv_mAP"] == 0.0
