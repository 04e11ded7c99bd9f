"""Evaluate: score each checkpoint on the validation split, pick the best, champion/challenger.

The challenger (best checkpoint of this run) is registered; it becomes production only when it
beats the current production model, scored again on this same validation split, by more than
`promotion.margin`. Every decision and both scores go to the database.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from steps import __version__, registry
from steps.config import Config, save_config
from steps.db import Database, resolve_url
from steps.errors import InputError
from steps.jsonio import write_json
from steps.log import get as get_logger
from steps.evaluate.scoring import load_split, predict_split, score
from steps.evaluate.store import record_evaluation
from steps.models import get_backend

log = get_logger("evaluate")
CHECKPOINT = re.compile(r"model_(\d+)\.pth$")


@dataclass(frozen=True)
class EvaluateResult:
    best_checkpoint: str
    best_score: float
    promoted: bool
    model_id: str
    model_uri: str
    reason: str


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every checkpoint in a train output folder, oldest first."""
    found = [(int(m.group(1)), p) for p in folder.rglob("model_*.pth") if (m := CHECKPOINT.search(p.name))]
    if not found:
        raise InputError(f"{folder}: no checkpoints (model_<iteration>.pth); did the train step finish?")
    return sorted(found)


def better(a: float, b: float, mode: str) -> bool:
    return a > b if mode == "max" else a < b


def select_best(rows: list[dict], key: str, mode: str) -> dict:
    """The row whose metrics[key] is best; ties go to the later checkpoint (trained longer)."""
    missing = [row["checkpoint"] for row in rows if key not in row["metrics"]]
    if missing:
        known = ", ".join(sorted(rows[0]["metrics"]))
        raise InputError(f"evaluate.select_key {key!r} is not a metric (known: {known})")
    best = rows[0]
    for row in rows[1:]:
        value, current = row["metrics"][key], best["metrics"][key]
        if math.isnan(current) or not better(current, value, mode):
            best = row
    return best


def evaluate(config: Config, dataset_dir: Path, checkpoints_dir: Path, out_dir: Path, run_id: str,
             dataset_version: str) -> EvaluateResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, out_dir / "config.yaml")
    gt = load_split(dataset_dir, "val")
    if not gt["images"]:
        raise InputError(f"{dataset_dir}/val.json: the validation split is empty; raise dataset.val_fraction")
    backend = get_backend(config.model.backend)
    key, mode = config.evaluate.select_key, config.evaluate.select_mode
    rows = []
    predictions: dict[str, list[dict]] = {}
    checkpoints = list_checkpoints(checkpoints_dir)
    for index, (iteration, path) in enumerate(checkpoints, start=1):
        log.info(f"evaluate: [{index}/{len(checkpoints)}] {path.name} on {len(gt['images'])} val images")
        predictor = backend.load(path)
        results = predict_split(predictor, gt, dataset_dir / "images", config.evaluate.score_threshold)
        metrics = score(gt, results, config.evaluate)
        (out_dir / "predictions").mkdir(exist_ok=True)
        (out_dir / "predictions" / f"{path.stem}.json").write_text(json.dumps(results))
        predictions[path.name] = results
        rows.append({"checkpoint": path.name, "iteration": iteration, "path": str(path), "metrics": metrics})
        log.info(f"evaluate: {path.name}: {_brief(metrics, key)}")
    best = select_best(rows, key, mode)
    challenger = best["metrics"][key]
    log.info(f"evaluate: best checkpoint {best['checkpoint']} ({key} = {challenger:.4f})")

    champion = _score_champion(config, gt, dataset_dir)
    champion_score = champion["metrics"][key] if champion else None
    promote, reason = registry.decide_promotion(challenger, champion_score, config.promotion.margin, mode)
    model = _register(config, best, dataset_version, run_id)
    if promote:
        # Refused if production moved since we scored it: a newer champion must be re-checked.
        registry.promote(config.promotion.registry, model.model_id, reason,
                         expected_champion=champion["model_id"] if champion else "")
    log.info(f"evaluate: {'promoted' if promote else 'not promoted'} {model.model_id}: {reason}")

    evaluation = {
        "run_id": run_id,
        "dataset_version": dataset_version,
        "select_key": key,
        "select_mode": mode,
        "checkpoints": [{k: v for k, v in row.items() if k != "path"} for row in rows],
        "best": best["checkpoint"],
        "champion": champion,
        "promotion": {"promoted": promote, "reason": reason, "model_id": model.model_id, "model_uri": model.uri,
                      "challenger_score": challenger, "champion_score": champion_score},
    }
    write_json(out_dir / "evaluation.json", evaluation)
    from steps.report import write_evaluation_report

    curves = pr_curves(gt, predictions[best["checkpoint"]], config)
    write_json(out_dir / "pr_curves.json", curves, indent=None)
    write_evaluation_report(out_dir, evaluation, {f"{best['checkpoint']}: {name}": c for name, c in curves.items()},
                            training_dir=checkpoints_dir)
    db = Database(resolve_url(config.database.url))
    db.migrate()
    record_evaluation(db, evaluation, rows, model, key)
    return EvaluateResult(best["checkpoint"], challenger, promote, model.model_id, model.uri, reason)


def pr_curves(gt: dict, results: list[dict], config: Config) -> dict[str, dict[str, list[float]]]:
    """Mask precision/recall at IoU 0.50: the plate class and the mean over all classes."""
    from steps.metrics import coco_evaluate

    kept = [r for r in results if r["score"] >= config.evaluate.score_threshold]
    per_class = coco_evaluate(gt, kept, "segm", curves=True)["pr50"]
    if not per_class:
        return {}
    curves = {}
    plate = config.evaluate.plate_label
    if plate in per_class:
        curves[f"segm PR@0.5 {plate}"] = per_class[plate]
    columns = list(zip(*(c["precision"] for c in per_class.values())))
    recall = next(iter(per_class.values()))["recall"]
    curves["segm PR@0.5 mean of classes"] = {"recall": recall, "precision": [sum(col) / len(col) for col in columns]}
    return curves


def _brief(metrics: dict[str, float], key: str) -> str:
    shown = [key, "bbox/AP", "segm/AP", "dv_mAP", "EIR"]
    return "  ".join(f"{k}={metrics[k]:.4f}" for k in dict.fromkeys(shown) if k in metrics)


def _score_champion(config: Config, gt: dict, dataset_dir: Path) -> dict | None:
    """The production model scored on this validation split, so both compete on the same data."""
    current = registry.production(config.promotion.registry)
    if current is None:
        return None
    log.info(f"evaluate: scoring production model {current['model_id']} on the same validation split")
    with tempfile.TemporaryDirectory(prefix="trainyard-champion-") as scratch:
        folder = registry.fetch_model(config.promotion.registry, current["model_id"], Path(scratch))
        predictor = get_backend(config.model.backend).load(folder / "model.pth")
        results = predict_split(predictor, gt, dataset_dir / "images", config.evaluate.score_threshold)
        return {"model_id": current["model_id"], "metrics": score(gt, results, config.evaluate)}


def _register(config: Config, best: dict, dataset_version: str, run_id: str) -> registry.RegisteredModel:
    with tempfile.TemporaryDirectory(prefix="trainyard-model-") as scratch:
        folder = Path(scratch)
        # Weights only: the optimizer state is half a training checkpoint and only resuming needs it.
        from steps.models.checkpoints import save_weights_only

        save_weights_only(Path(best["path"]), folder / "model.pth")
        save_config(config, folder / "config.yaml")
        lineage = _lineage(config, dataset_version, run_id, best)
        return registry.register(config.promotion.registry, folder, best["checkpoint"], best["metrics"], lineage)


def _lineage(config: Config, dataset_version: str, run_id: str, best: dict) -> dict:
    from steps.record.metadata import find_dataset

    db = Database(resolve_url(config.database.url))
    db.migrate()
    with db.transaction() as tx:
        dataset = find_dataset(tx, dataset_version) or {}
    return {
        "dataset_version": dataset_version,
        "annotation_version": dataset.get("annotation_version"),
        "dataset_commit": dataset.get("git_commit"),
        "run_id": run_id,
        "image_tags": {"trainyard": __version__},
        "checkpoint": best["checkpoint"],
        "iteration": best["iteration"],
        "backend": config.model.backend,
    }
