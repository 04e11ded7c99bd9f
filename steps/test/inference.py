"""Test: the selected model on the held-out test split, drawn into a browsable report.

The test split is never seen by training or checkpoint selection, so its numbers are the
honest estimate of how the model does on new images.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from steps import registry, storage
from steps.config import Config, save_config
from steps.errors import InputError
from steps.evaluate.scoring import load_split, predict_split, score
from steps.jsonio import write_json
from steps.log import get as get_logger
from steps.models import get_backend
from steps.models.coco_dataset import load_image
from steps.reports.outcomes import judge
from steps.reports.pages import ReportItem
from steps.reports.visualize import draw_ground_truth, draw_predictions

log = get_logger("test")


def model_id_of(config: Config, model: str) -> str:
    """The registered id `model` names: `production`, an id, or a URI under the registry's models/
    (what evaluate outputs as `model-uri`)."""
    if model == "production":
        current = registry.production(config.promotion.registry)
        if current is None:
            raise InputError(f"{config.promotion.registry}: no production model yet; run evaluate first or pass --model ID")
        return current["model_id"]
    if "/" not in model:
        return model
    models = storage.join(config.promotion.registry, "models").rstrip("/") + "/"
    model_id = model[len(models):].strip("/") if model.startswith(models) else ""
    if not model_id or "/" in model_id or model_id in (".", ".."):
        raise InputError(f"--model {model!r}: not a model of the registry {config.promotion.registry} "
                         f"(expected {models}<id>, a model id or 'production')")
    return model_id


def _load_model(config: Config, model: str, scratch: Path) -> tuple[object, str]:
    """A predictor for `model`: `production`, a registered model id or URI, or a checkpoint file."""
    if Path(model).is_file():
        return get_backend(config.model.backend).load(Path(model)), Path(model).name
    model_id = model_id_of(config, model)
    # A registered model is loaded with the backend it was trained with, whatever this run's is.
    backend = registry.show(config.promotion.registry, model_id).lineage.get("backend") or config.model.backend
    folder = registry.fetch_model(config.promotion.registry, model_id, scratch / model_id)
    return get_backend(backend).load(folder / "model.pth"), model_id


def _production_id(config: Config) -> str | None:
    current = registry.production(config.promotion.registry)
    return current["model_id"] if current else None


def run_test(config: Config, dataset_dir: Path, model: str, out_dir: Path, dataset_version: str,
             compare: bool = False) -> Path:
    """Test `model`; with `compare`, the production model on the same images beside it (scores and drawings)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, out_dir / "config.yaml")
    gt = load_split(dataset_dir, "test")
    if not gt["images"]:
        raise InputError(f"{dataset_dir}/test.json: the test split is empty; raise dataset.test_fraction")
    production_id = _production_id(config) if compare else None
    theirs = None
    with tempfile.TemporaryDirectory(prefix="trainyard-test-") as scratch:
        predictor, model_id = _load_model(config, model, Path(scratch))
        log.info(f"test: model {model_id} on {len(gt['images'])} test images")
        results = predict_split(predictor, gt, dataset_dir / "images", config.evaluate.score_threshold,
                                batch_size=config.test.batch_size)
        if production_id and production_id != model_id:
            champion, _ = _load_model(config, production_id, Path(scratch))
            log.info(f"test: production model {production_id} on the same images, for comparison")
            theirs = predict_split(champion, gt, dataset_dir / "images", config.evaluate.score_threshold,
                                   batch_size=config.test.batch_size)
    metrics = score(gt, results, config.evaluate)
    production_metrics = score(gt, theirs, config.evaluate) if theirs is not None else None
    write_json(out_dir / "predictions.json", results, indent=None)
    write_json(out_dir / "metrics.json", metrics)
    if compare:
        write_json(out_dir / "comparison.json", {"model": model_id, "production": production_id,
                                                 "production_metrics": production_metrics})
    from steps.reports.pages import Production, write_test_report
    from steps.reports.intervals import headline_intervals

    reading = read_test_plates(config, gt, results)
    if reading is not None:
        # Every plate's truth and reading: what EIR counted, to look up plate by plate.
        write_json(out_dir / "plates.json", reading)
        log.info(f"test: plates read exactly: {reading['exact']} of {reading['plates']} (EIR {reading['EIR']:.3f})")
    items = draw_items(config, gt, dataset_dir / "images", results, theirs, reading)
    same = production_id == model_id
    meta = {"model": model_id, "dataset version": dataset_version, "test images": str(len(gt["images"]))}
    title = f"trainyard test report: {model_id}"
    if compare:
        # Say whose report this is: the run's model, in production or not.
        status = "in production" if same else f"not in production (production: {production_id or 'none yet'})"
        meta["production"] = status
        title += f" ({status})"
    intervals = headline_intervals(gt, results, config.evaluate, config.evaluate.class_groups)
    production = Production(production_id, production_metrics) if production_id and production_metrics else None
    page = write_test_report(out_dir, items, metrics, title, meta, production, gt, intervals)
    log.info(f"test: {_brief(metrics)}")
    log.info(f"test: report {page}")
    return page


def read_test_plates(config: Config, gt: dict, results: list[dict]) -> dict | None:
    """EIR's reading of the split ({EIR, plates, exact, reads}); None without a plate class."""
    from steps.metrics import eir

    if config.evaluate.plate_label not in {c["name"] for c in gt["categories"]}:
        return None
    return eir(gt, results, plate_label=config.evaluate.plate_label, read_score=config.evaluate.read_score,
               char_nms_iou=config.evaluate.char_nms_iou)


def draw_items(config: Config, gt: dict, images_dir: Path, results: list[dict], theirs: list[dict] | None = None,
               reading: dict | None = None) -> list[ReportItem]:
    """The report's images: the first test.max_images of the split, this model's detections judged
    against the ground truth (and the production model's beside them, when given). `reading`:
    read_test_plates' result for these results (None: no plates)."""
    from steps.metrics import read_plates

    plate = config.evaluate.plate_label
    names = {c["id"]: c["name"] for c in gt["categories"]}
    has_plates = reading is not None
    truths: dict[int, list[str]] = {}
    for read in reading["reads"] if reading else []:
        truths.setdefault(read["image_id"], []).append(read["truth"])
    shown_at = config.test.score_threshold
    items = []
    for image in gt["images"][: config.test.max_images]:
        own = [r for r in results if r["image_id"] == image["id"]]
        shown = [r for r in own if r["score"] >= shown_at]
        # Plates are read as EIR reads them (evaluate.read_score), whatever test.score_threshold draws.
        reads = read_plates(own, names, plate, config.evaluate.read_score, config.evaluate.char_nms_iou) if has_plates else []
        picture = load_image(images_dir / image["file_name"])  # as the model saw it
        truth = truths.get(image["id"], []) if has_plates else None
        annotations = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
        outcome = judge(shown, annotations, picture.height, picture.width)
        production_image = production_outcome = None
        if theirs is not None:
            their_shown = [r for r in theirs if r["image_id"] == image["id"] and r["score"] >= shown_at]
            production_outcome = judge(their_shown, annotations, picture.height, picture.width)
            production_image = draw_predictions(picture, their_shown, gt["categories"], plate, outcome=production_outcome)
        items.append(ReportItem(
            file_name=image["file_name"],
            image=draw_predictions(picture, shown, gt["categories"], plate, reads, truth, outcome),
            plate_reads=[text for _, text in reads],
            truth_strings=truth,
            num_detections=len(shown),
            ground_truth_image=draw_ground_truth(picture, annotations, gt["categories"], plate),
            outcome=outcome,
            production_image=production_image,
            production_outcome=production_outcome,
        ))
    return items


def _brief(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k}={metrics[k]:.4f}" for k in ("bbox/AP", "segm/AP", "dv_mAP", "EIR") if k in metrics)
