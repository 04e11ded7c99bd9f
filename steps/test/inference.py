"""Test: the selected model on the held-out test split, drawn into a browsable report.

The test split is never seen by training or checkpoint selection, so its numbers are the
honest estimate of how the model does on new images.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from PIL import Image

from steps import registry
from steps.config import Config, save_config
from steps.errors import InputError
from steps.evaluate.scoring import load_split, predict_split, score
from steps.jsonio import write_json
from steps.log import get as get_logger
from steps.models import get_backend

log = get_logger("test")


def _load_model(config: Config, model: str, scratch: Path) -> tuple[object, str]:
    """A predictor for `model`: `production`, a registered model id, or a checkpoint file."""
    backend = get_backend(config.model.backend)
    if Path(model).is_file():
        return backend.load(Path(model)), Path(model).name
    model_id = model
    if model == "production":
        current = registry.production(config.promotion.registry)
        if current is None:
            raise InputError(f"{config.promotion.registry}: no production model yet; run evaluate first or pass --model ID")
        model_id = current["model_id"]
    folder = registry.fetch_model(config.promotion.registry, model_id, scratch)
    return backend.load(folder / "model.pth"), model_id


def run_test(config: Config, dataset_dir: Path, model: str, out_dir: Path, dataset_version: str) -> Path:
    from steps.metrics import eir, read_plates
    from steps.report import ReportItem, write_test_report
    from steps.visualize import draw_ground_truth, draw_predictions

    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, out_dir / "config.yaml")
    gt = load_split(dataset_dir, "test")
    if not gt["images"]:
        raise InputError(f"{dataset_dir}/test.json: the test split is empty; raise dataset.test_fraction")
    with tempfile.TemporaryDirectory(prefix="trainyard-test-") as scratch:
        predictor, model_id = _load_model(config, model, Path(scratch))
        log.info(f"test: model {model_id} on {len(gt['images'])} test images")
        results = predict_split(predictor, gt, dataset_dir / "images", config.evaluate.score_threshold)
    metrics = score(gt, results, config.evaluate)
    write_json(out_dir / "predictions.json", results, indent=None)
    write_json(out_dir / "metrics.json", metrics)

    plate = config.evaluate.plate_label
    names = {c["id"]: c["name"] for c in gt["categories"]}
    has_plates = plate in names.values()
    truths: dict[int, list[str]] = {}
    if has_plates:
        for read in eir(gt, results, plate_label=plate, char_score=config.evaluate.eir_char_score)["reads"]:
            truths.setdefault(read["image_id"], []).append(read["truth"])
    items = []
    for image in gt["images"][: config.test.max_images]:
        shown = [r for r in results if r["image_id"] == image["id"] and r["score"] >= config.test.score_threshold]
        reads = read_plates(shown, names, plate, config.evaluate.eir_char_score) if has_plates else []
        picture = Image.open(dataset_dir / "images" / image["file_name"]).convert("RGB")
        truth = truths.get(image["id"], []) if has_plates else None
        annotations = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
        items.append(ReportItem(
            file_name=image["file_name"],
            image=draw_predictions(picture, shown, gt["categories"], plate, reads, truth),
            plate_reads=[text for _, text in reads],
            truth_strings=truth,
            num_detections=len(shown),
            ground_truth_image=draw_ground_truth(picture, annotations, gt["categories"], plate),
        ))
    meta = {"model": model_id, "dataset version": dataset_version, "test images": str(len(gt["images"]))}
    page = write_test_report(out_dir, items, metrics, f"trainyard test report: {model_id}", meta)
    log.info(f"test: {_brief(metrics)}")
    log.info(f"test: report {page}")
    return page


def _brief(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k}={metrics[k]:.4f}" for k in ("bbox/AP", "segm/AP", "dv_mAP", "EIR") if k in metrics)
