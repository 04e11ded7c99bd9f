"""coco_evaluate gives pycocotools' numbers (bbox and segm), survives empty results, stays quiet."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from steps.errors import InputError
from steps.masks import encode, polygons_to_mask
from steps.config import EvaluateConfig
from steps.metrics import all_metrics, coco_evaluate, coco_stats
from steps.metrics.ground_truth import check_results

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

NAMES = ["plate", "A", "B"]


def _polygon(rng: np.random.Generator, cx: float, cy: float, w: float, h: float) -> list[float]:
    """A rotated rectangle with a little vertex noise."""
    angle = rng.uniform(-0.4, 0.4)
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = corners @ rot.T + [cx, cy] + rng.normal(0, 0.5, (4, 2))
    return [round(float(v), 2) for v in points.ravel()]


def synthetic_gt(seed: int, images: int = 6) -> dict:
    rng = np.random.default_rng(seed)
    height, width = 160, 240
    gt: dict = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(NAMES)]}
    for image_id in range(1, images + 1):
        gt["images"].append({"id": image_id, "file_name": f"{image_id}.jpg", "width": width, "height": height})
        for _ in range(rng.integers(1, 6)):
            # Sizes from a few pixels to most of the image: small, medium and large areas.
            w, h = rng.uniform(4, 200), rng.uniform(4, 120)
            poly = _polygon(rng, rng.uniform(w / 2, width - w / 2), rng.uniform(h / 2, height - h / 2), w, h)
            mask = polygons_to_mask([poly], height, width)
            if not mask.any():
                continue
            xs, ys = poly[0::2], poly[1::2]
            gt["annotations"].append({
                "id": len(gt["annotations"]) + 1, "image_id": image_id, "category_id": int(rng.integers(1, 4)),
                "segmentation": [poly], "area": float(mask.sum()),
                "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], "iscrowd": 0,
            })
    return gt


def jittered_results(gt: dict, seed: int) -> list[dict]:
    """Detections near most GT (some with the wrong class), plus false positives."""
    rng = np.random.default_rng(seed)
    sizes = {img["id"]: (img["height"], img["width"]) for img in gt["images"]}
    results = []
    for ann in gt["annotations"]:
        for _ in range(rng.integers(0, 3)):
            poly = (np.array(ann["segmentation"][0]) + rng.normal(0, rng.uniform(0.5, 6), 8)).tolist()
            category = ann["category_id"] if rng.random() > 0.15 else int(rng.integers(1, 4))
            results.append(_result(ann["image_id"], category, poly, sizes, rng))
    for image_id, (height, width) in sizes.items():
        for _ in range(rng.integers(0, 3)):
            poly = _polygon(rng, rng.uniform(10, width - 10), rng.uniform(10, height - 10), 20, 12)
            results.append(_result(image_id, int(rng.integers(1, 4)), poly, sizes, rng))
    return results


def _result(image_id: int, category: int, poly: list[float], sizes: dict, rng: np.random.Generator) -> dict:
    height, width = sizes[image_id]
    xs, ys = np.clip(poly[0::2], 0, width), np.clip(poly[1::2], 0, height)
    box = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min()), float(ys.max() - ys.min())]
    return {"image_id": image_id, "category_id": category, "bbox": box, "score": round(float(rng.random()), 4),
            "segmentation": encode(polygons_to_mask([poly], height, width))}


def pycocotools_reference(gt: dict, results: list[dict], iou_type: str,
                          drop_boxes: bool = False) -> tuple[list[float], dict[str, float]]:
    """The summary stats (all 12) and per-class AP as pycocotools computes them on the results as
    they are (segm results that carry a box get its area from loadRes); with `drop_boxes`, as
    detectron2 calls it for segm (boxes dropped first, so the areas are the masks')."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        dropped = "segmentation" if iou_type == "bbox" else "bbox" if drop_boxes else ""
        coco_dt = coco_gt.loadRes([{k: v for k, v in r.items() if k != dropped} for r in copy.deepcopy(results)])
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"]
    per_class = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        values = precision[:, :, k, 0, -1]
        if (values > -1).any():
            per_class[coco_gt.cats[cat_id]["name"]] = float(values[values > -1].mean())
    return [float(s) for s in evaluator.stats], per_class  # all 12: AP ... APl, AR1 ... ARl


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_equals_pycocotools(iou_type: str, seed: int) -> None:
    gt = synthetic_gt(seed)
    results = jittered_results(gt, seed + 100)
    expected_stats, expected_per_class = pycocotools_reference(gt, results, iou_type)

    got = coco_evaluate(gt, results, iou_type, recall=True)

    assert_twelve(got, expected_stats)
    assert got["per_class"].keys() == expected_per_class.keys()
    for name, expected in expected_per_class.items():
        assert got["per_class"][name] == pytest.approx(expected, abs=1e-9), name
    assert 0.0 < got["AP"] < 1.0  # the jitter makes a non-trivial case


def assert_twelve(got: dict, expected_stats: list[float]) -> None:
    """All twelve COCO summary figures equal pycocotools' (its -1, no ground truth, is our NaN)."""
    for key, expected in zip((*coco_stats.SUMMARY_KEYS, *coco_stats.RECALL_KEYS), expected_stats, strict=True):
        if expected < 0:
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(expected, abs=1e-9), key


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_segm_results_with_boxes_score_as_pycocotools_by_default(seed: int) -> None:
    # detectron2's and torchvision's exports carry a bbox and a mask. pycocotools' loadRes then
    # sorts each result into small/medium/large by its box's area, not its mask's; by default we
    # do too (all twelve figures), and the mask areas are the named option.
    gt = synthetic_gt(seed, images=8)
    results = jittered_results(gt, seed + 200)
    for res in results[1::3]:  # boxes looser than their masks, so the two areas disagree
        x, y, w, h = res["bbox"]
        res["bbox"] = [x, y, w * 1.6 + 3, h * 1.6 + 3]
    by_box, _ = pycocotools_reference(gt, results, "segm")
    by_mask, _ = pycocotools_reference(gt, results, "segm", drop_boxes=True)
    assert by_box != by_mask  # the case where the choice matters

    default = coco_evaluate(gt, results, "segm", recall=True)
    assert_twelve(default, by_box)
    assert_twelve(coco_evaluate(gt, results, "segm", recall=True, segm_area="mask"), by_mask)
    # Without boxes there is no choice: both are the masks' areas.
    boxless = [{k: v for k, v in res.items() if k != "bbox"} for res in results]
    assert_twelve(coco_evaluate(gt, boxless, "segm", recall=True), by_mask)
    # Many detections per image (more than maxDets=100 of some pairs), as the bench's files.
    assert_twelve(coco_evaluate(gt, results * 60, "segm", recall=True),
                  pycocotools_reference(gt, results * 60, "segm")[0])


def test_boxes_on_some_segm_results_only_are_named() -> None:
    gt = synthetic_gt(0)
    results = jittered_results(gt, 100)
    gaps = [results[0], {k: v for k, v in results[1].items() if k != "bbox"}, *results[2:]]
    with pytest.raises(InputError, match=r"predictions\[1\]: missing bbox"):
        coco_evaluate(gt, gaps, "segm")  # pycocotools' loadRes fails on it (KeyError)
    coco_evaluate(gt, gaps, "segm", segm_area="mask")  # boxes unread
    with pytest.raises(InputError, match=r"predictions\[2\]\.bbox"):
        coco_evaluate(gt, [*results[:2], {**results[2], "bbox": [1, 2, "wide", 4]}], "segm")


def test_perfect_results_score_one_and_inputs_are_left_untouched() -> None:
    gt = synthetic_gt(5, images=3)
    sizes = {img["id"]: (img["height"], img["width"]) for img in gt["images"]}
    results = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9,
         "segmentation": encode(polygons_to_mask(a["segmentation"], *sizes[a["image_id"]]))}
        for a in gt["annotations"]
    ]
    gt_before, results_before = copy.deepcopy(gt), copy.deepcopy(results)
    for iou_type in ("bbox", "segm"):
        got = coco_evaluate(gt, results, iou_type)
        assert got["AP"] == pytest.approx(1.0) and got["AP50"] == pytest.approx(1.0)
        assert set(got["per_class"]) == {NAMES[a["category_id"] - 1] for a in gt["annotations"]}
    assert gt == gt_before and results == results_before


def test_empty_results_give_zero_ap() -> None:
    gt = synthetic_gt(0)
    for iou_type in ("bbox", "segm"):
        got = coco_evaluate(gt, [], iou_type)
        assert got["AP"] == 0.0 and got["AP50"] == 0.0
        assert all(value == 0.0 for value in got["per_class"].values())


def test_category_without_ground_truth_is_omitted_from_per_class() -> None:
    gt = synthetic_gt(0)
    gt["categories"].append({"id": 9, "name": "unused"})
    got = coco_evaluate(gt, jittered_results(gt, 7), "bbox")
    assert "unused" not in got["per_class"]


def test_area_ranges_without_ground_truth_are_nan() -> None:
    gt = synthetic_gt(0, images=1)
    small = [[10, 10, 20, 10, 20, 15, 10, 15]]  # 50 px: only the "small" range has ground truth
    gt["annotations"] = [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": small, "area": 50.0,
                          "bbox": [10, 10, 10, 5], "iscrowd": 0}]
    got = coco_evaluate(gt, [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 10, 5], "score": 0.9}], "bbox")
    assert got["AP"] == pytest.approx(1.0) and got["APs"] == pytest.approx(1.0)
    assert math.isnan(got["APm"]) and math.isnan(got["APl"])


def test_silent_unless_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    gt = synthetic_gt(0, images=2)
    results = jittered_results(gt, 1)
    coco_evaluate(gt, results, "segm")
    assert capsys.readouterr().out == ""
    coco_evaluate(gt, results, "segm", verbose=True)
    assert "Average Precision" in capsys.readouterr().out


def test_prediction_on_unknown_image_is_an_input_error() -> None:
    gt = synthetic_gt(0, images=2)
    with pytest.raises(InputError, match="image_id 99"):
        coco_evaluate(gt, [{"image_id": 99, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}], "bbox")


def test_all_metrics_flat_keys_and_score_threshold() -> None:
    gt = synthetic_gt(1)
    results = jittered_results(gt, 11)
    got = all_metrics(gt, results, EvaluateConfig(score_threshold=0.0))
    assert got["segm/AP"] == pytest.approx(coco_evaluate(gt, results, "segm")["AP"])
    assert {"bbox/AP", "bbox/AP50", "segm/APl", "segm/AP-plate", "dv_mAP", "dv_AP-plate", "EIR"} <= got.keys()
    nothing_kept = all_metrics(gt, results, EvaluateConfig(score_threshold=1.0))
    assert nothing_kept["bbox/AP"] == 0.0 and nothing_kept["dv_mAP"] == 0.0


def test_all_metrics_without_a_plate_category_skips_plate_metrics() -> None:
    gt = synthetic_gt(1)
    got = all_metrics(gt, jittered_results(gt, 11), EvaluateConfig(plate_label="licence"))
    assert "segm/AP" in got and "dv_mAP" not in got and "EIR" not in got


@pytest.mark.parametrize("seed", [0, 1])
def test_polygon_results_equal_pycocotools_on_their_rles(seed: int) -> None:
    gt = synthetic_gt(seed)
    sizes = {img["id"]: (img["height"], img["width"]) for img in gt["images"]}
    rng = np.random.default_rng(seed)
    polygons = []
    for ann in gt["annotations"]:
        poly = (np.array(ann["segmentation"][0]) + rng.normal(0, 3, 8)).tolist()
        polygons.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                         "score": round(float(rng.random()), 4), "segmentation": [poly]})
    # The same detections as RLEs rasterised at their image's size: what pycocotools' loadRes takes.
    rles = [{**det, "segmentation": encode(polygons_to_mask(det["segmentation"], *sizes[det["image_id"]]))}
            for det in polygons]
    expected_stats, expected_per_class = pycocotools_reference(gt, rles, "segm")

    # All polygons, and every other one an RLE: the RLEs' areas come from their check's decode,
    # the polygons' from the C mask code; the area ranges (APs, APm, APl) read both.
    mixed = [rle if i % 2 else det for i, (det, rle) in enumerate(zip(polygons, rles))]
    for predictions in (polygons, mixed):
        got = coco_evaluate(gt, predictions, "segm")

        for key, expected in zip(("AP", "AP50", "AP75", "APs", "APm", "APl"), expected_stats):
            assert math.isnan(got[key]) if expected < 0 else got[key] == pytest.approx(expected, abs=1e-9), key
        assert got["per_class"] == pytest.approx(expected_per_class, abs=1e-9)
        assert 0 < got["AP"] < 1


def test_the_first_bad_rle_is_named_though_all_are_checked_at_once() -> None:
    from steps.metrics.ground_truth import check_results

    good = {"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": encode(np.ones((4, 4), dtype=bool))}
    bad_runs = {**good, "segmentation": {"size": [4, 4], "counts": "04"}}  # 4 pixels of 16
    bad_category = {**good, "category_id": 9}
    with pytest.raises(InputError, match=r"predictions\[1\]\.segmentation: not a valid RLE"):
        check_results([good, bad_runs, bad_category], {1: (4, 4)}, [1])
    with pytest.raises(InputError, match=r"predictions\[1\]: category_id 9"):
        check_results([good, bad_category, bad_runs], {1: (4, 4)}, [1])
    check_results([good, bad_runs], {1: (4, 4)}, [1], unread=("segmentation",))  # bbox AP never reads it


GOOD = {"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [1.0, 2, 3, 4],
        "segmentation": encode(np.ones((4, 4), dtype=bool))}


@pytest.mark.parametrize(("change", "message"), [
    ({"image_id": True}, r"image_id True is not an image"),
    ({"category_id": 1.0}, r"category_id 1.0 is not a category"),
    ({"score": True}, r"score True is not a finite number"),
    ({"score": 10**400}, r"score .* is not a finite number"),
    ({"bbox": [1, 2, 3]}, r"expected \[x, y, width, height\]"),
    ({"bbox": [1, 2, True, 4]}, r"expected \[x, y, width, height\]"),
    ({"bbox": [1, 2, 3, -4]}, r"width and height must be >= 0"),
    ({"segmentation": {"size": [4.0, 4], "counts": encode(np.ones((4, 4), dtype=bool))["counts"]}}, r"RLE size \[4\.0, 4\] is not"),
    ({"segmentation": {"size": [4, 5], "counts": "0<"}}, r"RLE size \[4, 5\] is not the image's"),
    ({"segmentation": [[1, 2, 3]]}, r"expected an RLE object or a list of polygons"),
], ids=["bool-image", "float-category", "bool-score", "huge-score", "short-bbox", "bool-in-bbox", "negative-height",
        "float-size", "wrong-size", "short-polygon"])
def test_a_big_good_file_with_one_bad_field_names_it(change: dict, message: str) -> None:
    # A good file is passed a column at a time; one bad field anywhere must still be named.
    results = [dict(GOOD) for _ in range(500)]
    results[321] = {**GOOD, **change}
    with pytest.raises(InputError, match=rf"^predictions\[321\]\S*: .*(?:{message})"):
        check_results(results, {1: (4, 4)}, [1])


def test_a_field_on_some_results_only_is_still_checked() -> None:
    results = [{k: v for k, v in GOOD.items() if k != "bbox"} for _ in range(300)]
    results[200] = {**results[200], "bbox": [0, 0, -1, 1]}
    with pytest.raises(InputError, match=r"^predictions\[200\]\.bbox: width and height"):
        check_results(results, {1: (4, 4)}, [1])
    check_results([{k: v for k, v in GOOD.items() if k != "bbox"}] * 300, {1: (4, 4)}, [1])  # absent: fine


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_checked_predictions_score_the_same(iou_type: str) -> None:
    # The promotion bootstrap checks the predictions once (check_predictions, then checked=True):
    # every number stays bit for bit, on polygons the evaluator rasterises as they come.
    from steps.metrics.coco_ap import check_predictions

    gt = synthetic_gt(3, images=12)
    results = jittered_results(gt, 103)
    odd = copy.deepcopy(gt)
    odd["annotations"][0]["segmentation"].append([1.0, 1.0, 2.0, 2.0])  # 2 points
    odd["annotations"][1]["segmentation"].append([1.0, 1.0, 9.0, 1.0, 5.0, 7.0])  # two polygons: their union
    for truth in (gt, odd):
        plain = coco_evaluate(truth, results, iou_type, recall=True, curves=True)
        check_predictions(truth, results, iou_type)
        again = coco_evaluate(truth, results, iou_type, recall=True, curves=True, checked=True)
        assert json.dumps(again, sort_keys=True) == json.dumps(plain, sort_keys=True)
    expected_stats, _ = pycocotools_reference(odd, results, iou_type)
    assert coco_evaluate(odd, results, iou_type)["AP"] == pytest.approx(expected_stats[0], abs=1e-12)


def test_check_predictions_names_what_coco_evaluate_would() -> None:
    from steps.metrics.coco_ap import check_predictions

    gt = synthetic_gt(0)
    results = jittered_results(gt, 100)
    results[3] = {**results[3], "segmentation": {"size": [4, 4], "counts": "04"}}
    for call in (lambda: coco_evaluate(gt, results, "segm"), lambda: check_predictions(gt, results, "segm")):
        with pytest.raises(InputError, match=r"predictions\[3\]\.segmentation: RLE size"):
            call()
    check_predictions(gt, results, "bbox")  # bbox AP never reads the mask


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_rle_and_crowd_ground_truth_equal_pycocotools(iou_type: str) -> None:
    # Ground-truth masks given as compressed RLEs (str and bytes counts) go to the evaluator as
    # its "rle" as they are; crowd regions (one polygon, one uncompressed RLE) keep their meaning.
    gt = synthetic_gt(2, images=12)
    results = jittered_results(gt, 102)
    sizes = {img["id"]: (img["height"], img["width"]) for img in gt["images"]}
    for k, ann in enumerate(gt["annotations"]):
        if k % 3:
            rle = encode(polygons_to_mask(ann["segmentation"], *sizes[ann["image_id"]]))
            ann["segmentation"] = rle if k % 2 else {**rle, "counts": rle["counts"].encode("ascii")}
    for k, crowd in enumerate(gt["annotations"][:2]):
        crowd["iscrowd"] = 1
        if k:
            mask = np.asfortranarray(polygons_to_mask([[0, 0, 60, 0, 60, 40, 0, 40]], *sizes[crowd["image_id"]]))
            flat = mask.ravel(order="F").astype(np.int8)
            edges = np.flatnonzero(np.diff(np.concatenate(([0], flat, [1 - flat[-1]]))))
            crowd["segmentation"] = {"size": list(mask.shape), "counts": np.diff(np.concatenate(([0], edges))).tolist()}
    expected_stats, expected_per_class = pycocotools_reference(gt, results, iou_type)

    got = coco_evaluate(gt, results, iou_type, recall=True)

    keys = (*coco_stats.SUMMARY_KEYS, *coco_stats.RECALL_KEYS)
    for key, expected in zip(keys, expected_stats):
        assert math.isnan(got[key]) if expected < 0 else got[key] == pytest.approx(expected, abs=1e-12), key
    assert got["per_class"] == pytest.approx(expected_per_class, abs=1e-12)


def test_segm_needs_every_mask_and_takes_none_from_the_file() -> None:
    gt = synthetic_gt(0)
    results = jittered_results(gt, 100)
    lacking = copy.deepcopy(gt)
    # No segmentation, but an "rle" of 15 pixels of 256: the evaluator's own field, never read
    # from a file (its IoU loop would not end on runs that stop short of the image).
    del lacking["annotations"][1]["segmentation"]
    lacking["annotations"][1]["rle"] = {"size": [16, 16], "counts": "0?z~"}
    with pytest.raises(InputError, match=r"annotations\[1\]: no segmentation; segm AP needs every object's mask"):
        coco_evaluate(lacking, results, "segm")
    assert coco_evaluate(lacking, results, "bbox")["AP"] == coco_evaluate(gt, results, "bbox")["AP"]
    with_rle = copy.deepcopy(gt)
    with_rle["annotations"][1]["rle"] = {"size": [16, 16], "counts": "0?z~"}
    assert json.dumps(coco_evaluate(with_rle, results, "segm"), sort_keys=True) == \
        json.dumps(coco_evaluate(gt, results, "segm"), sort_keys=True)


def test_ground_truth_image_ids_must_be_unique() -> None:
    from steps.metrics.ground_truth import check_ground_truth

    gt = synthetic_gt(0)
    twice = copy.deepcopy(gt)
    twice["images"].append({**twice["images"][0], "height": 400})
    with pytest.raises(InputError, match=rf"images\[{len(gt['images'])}\]: id 1 is already the id of an earlier image"):
        check_ground_truth(twice)


GOOD_OBJECT = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1.0, 2, 3, 4], "area": 12.0, "iscrowd": 0,
               "segmentation": [[1.0, 2, 4, 2, 4, 6, 1, 6]]}


@pytest.mark.parametrize(("change", "message"), [
    ({"image_id": True}, r": image_id True is not in images"),
    ({"category_id": 1.0}, r": category_id 1.0 is not in categories"),
    ({"id": "7"}, r": needs an integer id"),
    ({"bbox": [1, 2, 3]}, r"\.bbox: expected \[x, y, width, height\]"),
    ({"bbox": [1, 2, math.nan, 4]}, r"\.bbox: expected \[x, y, width, height\]"),
    ({"bbox": [1, 2, 3, -4]}, r"\.bbox: width and height must be >= 0"),
    ({"area": "12"}, r"\.area: '12' is not a finite number"),
    ({"area": math.inf}, r"\.area: inf is not a finite number"),
    ({"segmentation": [[1, 2, 3, 4, 5]]}, r"\.segmentation: expected an RLE object or a list of polygons"),
    ({"segmentation": [[1, 2, 3, 4, 5, 6, 7]]}, r"\.segmentation: expected an RLE object"),
    ({"segmentation": [[1, 2, 3, 4, True, 6]]}, r"\.segmentation: expected an RLE object"),
    ({"segmentation": []}, r"\.segmentation: expected an RLE object"),
    ({"segmentation": {"size": [8, 8], "counts": "0<"}}, r"\.segmentation: not a valid RLE"),
], ids=["bool-image", "float-category", "text-id", "short-bbox", "nan-in-bbox", "negative-height", "text-area",
        "infinite-area", "short-polygon", "odd-polygon", "bool-in-polygon", "no-polygon", "short-rle"])
def test_a_big_good_ground_truth_with_one_bad_field_names_it(change: dict, message: str) -> None:
    # A good ground truth is judged a column at a time; one bad field anywhere must still be named.
    from steps.metrics.ground_truth import check_ground_truth

    gt = {"images": [{"id": 1, "height": 8, "width": 8}], "categories": [{"id": 1, "name": "plate"}],
          "annotations": [{**GOOD_OBJECT, "id": k} for k in range(1, 501)]}
    check_ground_truth(gt)
    crowd = {"size": [8, 8], "counts": encode(np.ones((8, 8), dtype=bool))["counts"]}
    check_ground_truth({**gt, "annotations": [*gt["annotations"], {**GOOD_OBJECT, "segmentation": crowd, "iscrowd": 1}]})
    gt["annotations"][321] = {**GOOD_OBJECT, **change}
    with pytest.raises(InputError, match=rf"^annotations\[321\]{message}"):
        check_ground_truth(gt)


@pytest.mark.parametrize(("change", "message"), [
    ({"height": True}, r": needs an integer id, height and width"),
    ({"id": 7.0}, r": needs an integer id, height and width"),
    ({"width": 0}, r": needs an integer id, height and width \(> 0\)"),
    ({"width": 10**5, "height": 10**5}, r": declares a 100000x100000 image, more than"),
    ({"id": 5}, r": id 5 is already the id of an earlier image"),
], ids=["bool-height", "float-id", "zero-width", "too-many-pixels", "repeated-id"])
def test_many_good_images_with_one_bad_field_name_it(change: dict, message: str) -> None:
    from steps.metrics.ground_truth import check_ground_truth

    gt = {"images": [{"id": k, "height": 8, "width": 8} for k in range(1, 501)], "categories": [], "annotations": []}
    check_ground_truth(gt)
    gt["images"][321] = {**gt["images"][321], **change}
    with pytest.raises(InputError, match=rf"^images\[321\]{message}"):
        check_ground_truth(gt)
