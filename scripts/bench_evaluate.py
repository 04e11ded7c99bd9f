"""What evaluate and select cost as a validation split grows: plates with their characters, two
models' predictions at a realistic density (about 60 per image), for `scripts/bench.py`'s
`evaluate` section. Runnable alone too:

    python scripts/bench_evaluate.py --images 60,500 --samples 200
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not
from steps.masks import polygons_to_rle  # noqa: E402

HEIGHT, WIDTH = 240, 320
DIGITS = "0123456789"
DETECTIONS = 15
KEYS = ("bbox/AP", "segm/AP", "segm/AP50-plate", "dv_mAP", "EIR")


def _box(cx: float, cy: float, w: float, h: float) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy - h / 2, cx + w / 2, cy + h / 2, cx - w / 2, cy + h / 2]


def plate_scene(images: int, seed: int = 0, copies: int = 5) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A ground truth of 1-2 plates of 5 digits per image, and two models' predictions: `copies`
    jittered detections of each object (about 60 per image), some of the wrong class, a few missed."""
    rng = np.random.default_rng(seed)
    names = ["plate", *DIGITS]
    gt: dict[str, Any] = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)]}
    for image_id in range(1, images + 1):
        gt["images"].append({"id": image_id, "file_name": f"{image_id}.jpg", "height": HEIGHT, "width": WIDTH})
        for row in range(int(rng.integers(1, 3))):
            cx, cy, char = rng.uniform(70, WIDTH - 70), 60 + 110 * row + rng.uniform(-15, 15), rng.uniform(14, 20)
            _annotate(gt, image_id, 1, _box(cx, cy, 6 * char, 1.6 * char))
            for k in range(5):
                _annotate(gt, image_id, 2 + int(rng.integers(0, 10)), _box(cx + (k - 2) * char, cy, 0.8 * char, 1.2 * char))
    return gt, _predictions(gt, rng, copies, 0.05), _predictions(gt, rng, copies, 0.12)


def _annotate(gt: dict[str, Any], image_id: int, category: int, poly: list[float]) -> None:
    xs, ys = poly[0::2], poly[1::2]
    gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id, "category_id": category,
                              "segmentation": [poly], "area": (max(xs) - min(xs)) * (max(ys) - min(ys)),
                              "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], "iscrowd": 0})


def _predictions(gt: dict[str, Any], rng: np.random.Generator, copies: int, wrong: float) -> list[dict[str, Any]]:
    results = []
    for ann in gt["annotations"]:
        for copy in range(copies):
            if copy == 0 and rng.random() < wrong:
                continue  # missed
            poly = np.asarray(ann["segmentation"][0]) + rng.normal(0, 0.6 if copy == 0 else 3, 8)
            xs, ys = np.clip(poly[0::2], 0, WIDTH), np.clip(poly[1::2], 0, HEIGHT)
            category = ann["category_id"] if copy == 0 or rng.random() > 0.5 else int(rng.integers(1, 12))
            results.append({"image_id": ann["image_id"], "category_id": category,
                            "score": float(rng.uniform(0.6, 1.0) if copy == 0 else rng.uniform(0.05, 0.7)),
                            "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs)), float(np.ptp(ys))],
                            "segmentation": polygons_to_rle([poly.tolist()], HEIGHT, WIDTH)})
    return results


def prediction_seconds(config_file: Path, images: int = 4) -> float:
    """Seconds per validation image for the model `config_file` trains (untrained weights, at most
    DETECTIONS detections an image), on this machine's device, one image per call."""
    import tempfile

    import torch

    from steps.config import load_config
    from steps.datasets.labelme2coco import labelme2coco
    from steps.models import get_backend
    from steps.models.batching import predict_images
    from steps.models.checkpoints import save_checkpoint
    from steps.datasets.sample_data import generate_sample
    from steps.models.torchvision_model import build_model

    config = load_config(config_file, [])
    config.model.backend = "torchvision"
    with tempfile.TemporaryDirectory(prefix="trainyard-bench-predict-") as scratch:
        root = Path(scratch)
        generate_sample(root / "labelme", num_images=images, seed=0, image_size=(WIDTH, HEIGHT))
        coco = labelme2coco(root / "labelme", root / "coco").output_dir
        categories = [{"id": i + 1, "name": n} for i, n in enumerate(["plate", *DIGITS])]
        torch.manual_seed(0)
        model = build_model(config.model, len(categories) + 1)
        from steps.config import dump_config

        save_checkpoint({"backend": "torchvision", "iteration": 0, "model": model.state_dict(), "config": dump_config(config),
                         "categories": categories}, root / "model.pth")
        predictor = get_backend("torchvision").load(root / "model.pth", "auto")
        # Untrained weights score every class alike: keep as many detections as the trained demo
        # model makes (about 15 an image), or pasting 100 masks an image would be timed instead.
        predictor.model.roi_heads.detections_per_img = DETECTIONS
        inputs = [(path, i) for i, path in enumerate(sorted((coco / "images").iterdir()), start=1)]
        list(predict_images(predictor, inputs[:1], 0.05))  # warm-up
        started = time.perf_counter()
        list(predict_images(predictor, inputs, 0.05))
        return (time.perf_counter() - started) / len(inputs)


def costs(sizes: list[int], samples: int, anchor_samples: int, config_file: Path | None = None) -> list[dict[str, Any]]:
    """Rows: per size, scoring all metrics once, and the promotion bootstrap of each key (two models,
    `samples` resamples, all cores) beside the former way (every resample scored from scratch,
    timed on `anchor_samples` resamples and scaled to `samples`)."""
    from steps.config import EvaluateConfig
    from steps.evaluate.bootstrap import bootstrap_key, paired_bootstrap
    from steps.metrics.summary import all_metrics, family_metrics, family_of
    from steps.parallel import available_cpus

    config = EvaluateConfig()
    rows = []
    predict_s = prediction_seconds(config_file) if config_file else None
    for images in sizes:
        gt, ours, theirs = plate_scene(images)
        per_image = len(ours) / images
        if predict_s is not None:
            rows.append({"what": f"evaluate: predict {images} val images, {config_file.name}'s model",
                         "ours_s": predict_s * images,
                         "note": f"{predict_s:.3f} s/image, measured on 4 ({DETECTIONS} detections each); once per checkpoint, by its evaluate pod: "
                                 "select rescores the stored predictions, production's are kept per dataset version"})
        started = time.perf_counter()
        all_metrics(gt, ours, config)
        rows.append({"what": f"evaluate: score all metrics, {images} val images", "ours_s": time.perf_counter() - started,
                     "note": f"{per_image:.0f} predictions per image; once per checkpoint"})
        for key in KEYS:
            started = time.perf_counter()
            gains = bootstrap_key(gt, ours, theirs, key, config, samples)
            ours_s = time.perf_counter() - started
            family = family_of(key)

            def plain(sample_gt: dict[str, Any], sample_results: list[dict[str, Any]], family: str = family,
                      key: str = key) -> float:
                return family_metrics(family, sample_gt, sample_results, config).get(key, float("nan"))

            started = time.perf_counter()
            theirs_gains = paired_bootstrap(gt, ours, theirs, plain, anchor_samples, workers=1)
            anchor_s = (time.perf_counter() - started) * samples / anchor_samples
            same = np.array_equal(gains[:anchor_samples], theirs_gains, equal_nan=True)
            rows.append({"what": f"bootstrap {key}, {samples} resamples of {images} images", "ours_s": ours_s,
                         "anchor": f"every resample scored from scratch, 1 process (timed on {anchor_samples}, scaled)",
                         "anchor_s": anchor_s,
                         "note": f"{available_cpus()} process(es){'' if same else '; MISMATCH'}"})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default="60,500", help="comma-separated validation split sizes")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--anchor-samples", type=int, default=5)
    args = parser.parse_args()
    for row in costs([int(n) for n in args.images.split(",")], args.samples, args.anchor_samples):
        anchor = f"  anchor {row['anchor_s']:.2f}s" if "anchor_s" in row else ""
        print(f"{row['what']:<55} {row['ours_s']:8.2f}s{anchor}  {row['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
