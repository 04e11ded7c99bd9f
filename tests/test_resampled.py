"""A resample scored from the split's matches is the resample scored from scratch, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from steps.config import EvaluateConfig
from steps.evaluate.bootstrap import draw_resamples
from steps.datasets.labelme2coco import labelme2coco
from steps.masks import encode, polygons_to_mask
from steps.metrics.resampled import Resampled, by_image, resample_gt, resample_results
from steps.metrics.summary import family_metrics
from steps.datasets.sample_data import generate_sample


@pytest.fixture(scope="module")
def plates(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[dict]]:
    """Sample plates (their characters too) and predictions near most objects: some missed, some
    of the wrong class, boxes looser than masks, scores with ties, a false positive per image."""
    root = tmp_path_factory.mktemp("plates")
    generate_sample(root / "labelme", num_images=14, seed=3, image_size=(320, 240))
    gt = json.loads((labelme2coco(root / "labelme", root / "coco").output_dir / "train.json").read_text())
    rng = np.random.default_rng(5)
    sizes = {image["id"]: (image["height"], image["width"]) for image in gt["images"]}
    results = []
    for ann in gt["annotations"]:
        if rng.random() < 0.05:
            continue
        height, width = sizes[ann["image_id"]]
        poly = (np.asarray(ann["segmentation"][0]) + rng.normal(0, rng.uniform(0.2, 3), len(ann["segmentation"][0])))
        category = ann["category_id"] if rng.random() > 0.03 else int(rng.integers(1, len(gt["categories"]) + 1))
        x, y, w, h = ann["bbox"]
        results.append({"image_id": ann["image_id"], "category_id": category, "score": round(float(rng.uniform(0.1, 1)), 1),
                        "bbox": [x, y, w * rng.uniform(1, 1.5), h * rng.uniform(1, 1.5)],
                        "segmentation": encode(polygons_to_mask([poly.tolist()], height, width))})
    for image_id, (height, width) in sizes.items():
        square = [10.0, 10.0, 40.0, 10.0, 40.0, 40.0, 10.0, 40.0]
        results.append({"image_id": image_id, "category_id": len(gt["categories"]), "score": 0.5, "bbox": [10.0, 10.0, 30.0, 30.0],
                        "segmentation": encode(polygons_to_mask([square], height, width))})
    return gt, results


@pytest.mark.parametrize("families", [("bbox",), ("segm", "EIR", "dv")])
def test_every_resample_scores_as_scored_from_scratch(plates: tuple[dict, list[dict]], families: tuple[str, ...]) -> None:
    gt, results = plates
    config = EvaluateConfig(read_score=0.1)
    resampled = Resampled(gt, results, config, families)
    images, annotations, predictions = list(gt["images"]), by_image(gt["annotations"]), by_image(results)
    draws = [*draw_resamples(len(images), 6, seed=1), np.arange(len(images)), np.zeros(len(images), dtype=np.int64)]
    for drawn in draws:
        sample_gt, sample_results = resample_gt(gt, images, drawn, annotations), resample_results(drawn, images, predictions)
        expected = {}
        for family in families:
            expected.update(family_metrics(family, sample_gt, sample_results, config))
        got = resampled.metrics(drawn)
        assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert "EIR" not in families or 0 < resampled.metrics(np.arange(len(images)))["EIR"] < 1  # plates read, not all


@pytest.mark.parametrize("key", ["segm/AP", "segm/APm", "segm/AP50-plate", "EIR"])
def test_one_key_is_scored_as_with_all(plates: tuple[dict, list[dict]], key: str) -> None:
    gt, results = plates
    config = EvaluateConfig(read_score=0.1)
    family = key.split("/")[0]
    every, one = Resampled(gt, results, config, (family,)), Resampled(gt, results, config, (family,), keys=(key,))
    for drawn in draw_resamples(len(gt["images"]), 4, seed=2):
        assert one.metrics(drawn) == {key: every.metrics(drawn)[key]}
