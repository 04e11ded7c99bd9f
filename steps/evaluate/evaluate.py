"""Evaluate: score each checkpoint on the validation split, pick the best, champion/challenger.

The challenger (best checkpoint of this run) is registered; it becomes production only when it
beats the current production model, scored again on this same validation split (loaded with the
backend its lineage records), by more than `promotion.min_gain`, with a paired-bootstrap
confidence of at least `promotion.min_confidence` (steps/evaluate/promotion.py). Every decision,
both scores and the confidence go to the database, in the transaction that moves the production
pointer last (steps/evaluate/store.py).
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from steps import __version__, registry
from steps.config import Config, save_config
from steps.db import Database, resolve_url
from steps.errors import InputError
from steps.evaluate import stored
from steps.evaluate.bootstrap import bootstrap_key, gain_test
from steps.evaluate.groups import list_checkpoints, pick
from steps.evaluate.promotion import Decision, decide, decide_first, evidence, resamples, resolvable, spent, test_level
from steps.evaluate.scoring import category_map, load_split, predict_split, score
from steps.evaluate.reign import claim_test, comparison_set, next_test
from steps.evaluate.store import reconcile, record_evaluation
from steps.jsonio import write_json
from steps.log import get as get_logger
from steps.metrics.summary import metric_keys, resolve_select_key
from steps.models import get_backend

log = get_logger("evaluate")


@dataclass(frozen=True)
class EvaluateResult:
    best_checkpoint: str
    best_score: float
    promoted: bool
    model_id: str
    model_uri: str
    reason: str


# How far an evaluate pod's score of the selected checkpoint may lie from the score select gets
# from its own predictions: none on a CPU (the same predictions); a GPU's kernels may shift a
# detection's score in the last digits, which can move an AP by a few thousandths.
SCORE_TOLERANCE = 0.01


def check_scores(rows: list[dict]) -> None:
    """Every metric is a fraction in [0, 1] (or NaN, not defined): anything else was not computed
    by our metrics, and a forged 2.0 must never select or promote a checkpoint."""
    for row in rows:
        for key, value in row["metrics"].items():
            if not (math.isnan(value) or 0.0 <= value <= 1.0):
                raise InputError(f"{row['checkpoint']}: {key} = {value!r} is not a score in [0, 1] (every metric is a "
                                 "fraction); the evaluate pods' scores are broken or forged: nothing was registered")


def select_best(rows: list[dict], key: str, mode: str, tie_key: str = "segm/AP") -> dict:
    """The row whose metrics[key] is best (docs/metrics.md#promotion).

    Ties, common with a key that saturates at 1.0 (`segm/AP50-plate`), go to the better `tie_key`
    (evaluate.tie_break_key, compared in the same direction), then to the later checkpoint
    (trained longer), then to the lower sweep branch number. A NaN score never wins over a number,
    wherever it comes in the list; if every score is NaN the tie rules pick one (and the decision
    sees the NaN).
    """
    check_scores(rows)
    missing = [row["checkpoint"] for row in rows if key not in row["metrics"]]
    if missing:
        known = ", ".join(sorted(rows[0]["metrics"]))
        raise InputError(f"evaluate.select_key {key!r} is not a metric (known: {known})")
    sign = 1.0 if mode == "max" else -1.0

    def rank(row: dict) -> tuple[float, float, int, int]:
        value, tie = row["metrics"][key], row["metrics"].get(tie_key, math.nan)
        branch = row.get("branch") or "b0"
        return (-math.inf if math.isnan(value) else sign * value, -math.inf if math.isnan(tie) else sign * tie,
                row["iteration"], -int(branch[1:]) if branch[1:].isdigit() else 0)

    return max(rows, key=rank)


def verified(best: dict, key: str, ours: dict[str, float]) -> dict:
    """`best` with the metrics select computed itself from its predictions, after checking that
    what the evaluate pod claimed for the key (which selected it) is what they score."""
    claimed, own = best["metrics"][key], ours.get(key, math.nan)
    same = math.isnan(claimed) and math.isnan(own) or abs(claimed - own) <= SCORE_TOLERANCE
    if not same:
        raise InputError(f"{best['checkpoint']}: its evaluate pod claimed {key} = {claimed:.4f}, but its predictions "
                         f"score {own:.4f} here; the pods' scores cannot be trusted: nothing was registered")
    return {**best, "metrics": ours}


def evaluate(config: Config, dataset_dir: Path, checkpoints_dir: Path, out_dir: Path, run_id: str,
             dataset_version: str) -> EvaluateResult:
    """Score every checkpoint in this process, then select, register and promote."""
    gt = prepare(config, dataset_dir, out_dir)
    rows, predictions = score_checkpoints(config, gt, dataset_dir, list_checkpoints(checkpoints_dir), out_dir)
    return conclude(config, gt, dataset_dir, rows, predictions, out_dir, run_id, dataset_version, checkpoints_dir)


def prepare(config: Config, dataset_dir: Path, out_dir: Path) -> dict:
    """The validation split, checked before any checkpoint is scored, and evaluate.select_key
    resolved for it (the first of its preferences this dataset has a metric for)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, out_dir / "config.yaml")
    gt = load_split(dataset_dir, "val")
    if not gt["images"]:
        raise InputError(f"{dataset_dir}/val.json: the validation split is empty; raise dataset.val_fraction")
    resolve_select_key(config.evaluate, metric_keys(gt, config.evaluate))
    return gt


def score_only(config: Config, dataset_dir: Path, checkpoints_dir: Path, only: str, out_dir: Path,
               stored_dir: Path | None = None) -> list[dict]:
    """One pod of the fan-out evaluation: score the checkpoints named in `only`, write
    scores.json and their predictions; selection and promotion are the select step's.
    `stored_dir`: the folder of the pod's scores object, where each checkpoint's predictions are
    stored too, for select to rescore (steps/evaluate/stored.py)."""
    gt = prepare(config, dataset_dir, out_dir)
    rows, predictions = score_checkpoints(config, gt, dataset_dir, pick(list_checkpoints(checkpoints_dir), only), out_dir)
    scores = [{k: v for k, v in row.items() if k != "path"} for row in rows]
    if stored_dir is not None:
        scores = [{**row, "predictions": stored.store(stored_dir, row["checkpoint"], predictions[row["checkpoint"]])}
                  for row in scores]
    write_json(out_dir / "scores.json", scores)
    return scores


def score_checkpoints(config: Config, gt: dict, dataset_dir: Path, checkpoints: list[tuple[int, Path]],
                      out_dir: Path) -> tuple[list[dict], dict[str, list[dict]]]:
    backend = get_backend(config.model.backend)
    rows = []
    predictions: dict[str, list[dict]] = {}
    for index, (iteration, path) in enumerate(checkpoints, start=1):
        log.info(f"evaluate: [{index}/{len(checkpoints)}] {path.name} on {len(gt['images'])} val images")
        results = predict_split(backend.load(path), gt, dataset_dir / "images", config.evaluate.score_threshold,
                                path.name, batch_size=config.evaluate.batch_size)
        metrics = score(gt, results, config.evaluate)
        (out_dir / "predictions").mkdir(exist_ok=True)
        (out_dir / "predictions" / f"{path.stem}.json").write_text(json.dumps(results))
        predictions[path.name] = results
        rows.append({"checkpoint": path.name, "iteration": iteration, "path": str(path), "metrics": metrics})
        log.info(f"evaluate: {path.name}: {_brief(metrics, config.evaluate.select_key)}")
    return rows, predictions


def conclude(config: Config, gt: dict, dataset_dir: Path, rows: list[dict], predictions: dict[str, list[dict]],
             out_dir: Path, run_id: str, dataset_version: str, training_dir: Path | None = None,
             partial: dict | None = None, tensorboard: str | None = None) -> EvaluateResult:
    """Select the best of `rows`, score production on the same split, register the challenger,
    decide, write evaluation.json and the report, and promote: once per run, whoever scored.
    `predictions` must hold the best checkpoint's (the bootstrap and the PR curves use them);
    `training_dir`, the train output the report takes the training curves from; `partial`, what
    the selection lacks (steps/select/scores.py): such a result is never promoted automatically;
    `tensorboard`, the training logdir the report names (default: training_dir's)."""
    db = Database(resolve_url(config.database.url))
    db.migrate()
    repaired = reconcile(db, config.promotion.registry)
    if repaired:
        log.info(f"evaluate: production model {repaired} was missing from the database (an earlier run stopped "
                 "between promoting and recording it); recorded it now")
    key, mode = config.evaluate.select_key, config.evaluate.select_mode
    best = select_best(rows, key, mode, config.evaluate.tie_break_key)
    # Decide and register with what the predictions score here, never with a number handed in.
    best = verified(best, key, score(gt, predictions[best["checkpoint"]], config.evaluate))
    rows = [best if row["checkpoint"] == best["checkpoint"] else row for row in rows]
    challenger = best["metrics"][key]
    log.info(f"evaluate: best checkpoint {best['checkpoint']} ({key} = {challenger:.4f})")

    champion = _score_champion(config, gt, dataset_dir, dataset_version)
    split = comparison_set(gt)  # what the champion's reign counts its tests on
    decision = _decide(config, db, gt, split, best, predictions[best["checkpoint"]], champion, len(rows))
    if decision.samples is None:  # no test ran: the decision took no place in the champion's reign
        decision = replace(decision, reign_comparison=None)
    if partial:  # docs/cluster.md: a partial evaluation or sweep is registered, never promoted by itself
        decision = replace(decision, promoted=False, reason=f"partial result ({partial['reason']}): not promoted "
                           f"automatically, `trainyard models promote` it after a look; on what was scored: "
                           f"{decision.reason}")
    model = _register(config, best, dataset_version, run_id)
    log.info(f"evaluate: {'promoting' if decision.promoted else 'not promoting'} {model.model_id}: {decision.reason}")

    evaluation = {
        "run_id": run_id,
        "dataset_version": dataset_version,
        "select_key": key,
        "select_mode": mode,
        "checkpoints": [{k: v for k, v in row.items() if k != "path"} for row in rows],
        "best": best["checkpoint"],
        "champion": None if champion is None else {k: v for k, v in champion.items() if k != "results"},
        **({"branches": branch_summary(rows, key, mode, config.evaluate.tie_break_key)}
           if any("branch" in row for row in rows) else {}),
        **({"partial": partial} if partial else {}),
        "promotion": {**decision.as_dict(), "model_id": model.model_id, "model_uri": model.uri,
                      "min_gain": config.promotion.min_gain, "min_confidence": config.promotion.min_confidence,
                      "comparison_set": split},
    }
    write_json(out_dir / "evaluation.json", evaluation)
    from steps.reports.pages import write_evaluation_report

    curves = pr_curves(gt, predictions[best["checkpoint"]], config)
    write_json(out_dir / "pr_curves.json", curves, indent=None)
    from steps.reports.intervals import headline_intervals
    from steps.reports.tensorboard_results import write_validation

    write_validation(out_dir / "tensorboard", rows, config, gt, dataset_dir / "images", best, predictions[best["checkpoint"]])
    intervals = headline_intervals(gt, predictions[best["checkpoint"]], config.evaluate, config.evaluate.class_groups)
    write_evaluation_report(out_dir, evaluation, {f"{best['checkpoint']}: {name}": c for name, c in curves.items()},
                            training_dir=training_dir, gt=gt, intervals=intervals, tensorboard=tensorboard)

    def promote() -> None:
        # Refused if production moved since we scored it: a newer champion must be re-checked.
        registry.promote(config.promotion.registry, model.model_id, decision.reason,
                         expected_champion=champion["model_id"] if champion else "")

    record_evaluation(db, evaluation, rows, model, key, promote if decision.promoted else None)
    log.info(f"evaluate: {'promoted' if decision.promoted else 'not promoted'} {model.model_id}")
    return EvaluateResult(best["checkpoint"], challenger, decision.promoted, model.model_id, model.uri, decision.reason)


def branch_summary(rows: list[dict], key: str, mode: str, tie_key: str) -> list[dict]:
    """A sweep's branches side by side: each one's settings and its best checkpoint's scores."""
    branches = []
    for name in dict.fromkeys(row["branch"] for row in rows):
        own = [row for row in rows if row["branch"] == name]
        best = select_best(own, key, mode, tie_key)
        branches.append({"branch": name, "overrides": best.get("overrides", ""), "checkpoints": len(own),
                         "best": best["checkpoint"], "metrics": best["metrics"]})
    return branches


def _decide(config: Config, db: Database, gt: dict, split: str, best: dict, results: list[dict],
            champion: dict | None, candidates: int) -> Decision:
    """First model, or champion vs challenger on the same val images: enough evidence, a gain,
    then the centred paired bootstrap at the level the candidates and the reign on this split
    require. The test's place in the reign is claimed before it runs (steps/evaluate/reign.py), so
    a select that overlaps this one tests at the next place's level, never at this one's; a place
    whose level no allowed resampling resolves is not claimed: the reign's tests are spent."""
    key, mode, promotion = config.evaluate.select_key, config.evaluate.select_mode, config.promotion
    challenger = best["metrics"][key]
    if champion is None:
        return decide_first(challenger, promotion, mode)
    champion_score = champion["metrics"].get(key, float("nan"))
    seen = evidence(gt, key, config.evaluate.plate_label)
    reign = next_test(db, champion["model_id"], split)
    screened = decide(challenger, champion_score, None, promotion, mode, candidates, reign, seen)
    if not screened.promoted or promotion.min_confidence == 0:  # refused already, or no test asked for
        return screened
    alpha = test_level(promotion.min_confidence, candidates, reign)
    if not resolvable(alpha, promotion):
        return spent(screened, reign, alpha, promotion)
    reign = claim_test(db, champion["model_id"], split)
    alpha = test_level(promotion.min_confidence, candidates, reign)
    if not resolvable(alpha, promotion):  # an overlapping select took the last place that could pass
        return spent(screened, reign, alpha, promotion)
    samples = resamples(alpha, promotion)
    log.info(f"evaluate: paired bootstrap of {key}, {samples} resamples of {seen.images} val images "
             f"(test {reign} of this champion's reign on validation split {split}, at {1 - alpha:.4f})")
    gains = bootstrap_key(gt, results, champion["results"], key, config.evaluate, samples, mode)
    comparison = gain_test(screened.gain, gains, promotion.min_gain, alpha, seen.images)
    return decide(challenger, champion_score, comparison, promotion, mode, candidates, reign, seen)


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


def _score_champion(config: Config, gt: dict, dataset_dir: Path, dataset_version: str) -> dict | None:
    """The production model scored on this validation split, so both compete on the same data.

    It is loaded with the backend its lineage records, whatever this run's model.backend is. Its
    predictions are kept in the registry by (model, dataset version, split, score threshold): a
    later run on the same split (a sweep, a forced retrain, a retried select) scores them again
    without running the model.
    """
    current = registry.production(config.promotion.registry)
    if current is None:
        return None
    model_id = current["model_id"]
    model = registry.show(config.promotion.registry, model_id)
    backend = model.lineage.get("backend") or config.model.backend
    key = _split_key(gt, dataset_version, config.evaluate.score_threshold)
    kept = registry.stored_predictions(config.promotion.registry, model_id, key)
    if kept is not None:
        log.info(f"evaluate: scoring production model {model_id} ({backend}) with the predictions an earlier run "
                 "made on this validation split")
        categories, results = kept["categories"], kept["results"]
    else:
        log.info(f"evaluate: scoring production model {model_id} ({backend}) on the same validation split")
        with tempfile.TemporaryDirectory(prefix="trainyard-champion-") as scratch:
            folder = registry.fetch_model(config.promotion.registry, model_id, Path(scratch))
            predictor = get_backend(backend).load(folder / "model.pth")
            categories = predictor.categories
            results = predict_split(predictor, gt, dataset_dir / "images", config.evaluate.score_threshold,
                                    f"production model {model_id}", batch_size=config.evaluate.batch_size)
        registry.store_predictions(config.promotion.registry, model_id, key,
                                   {"categories": categories, "results": results})
    mapping = category_map(categories, gt)
    return {"model_id": model_id, "backend": backend, "metrics": score(gt, results, config.evaluate),
            "missing_classes": mapping.missing, "results": results}


def _split_key(gt: dict, dataset_version: str, score_threshold: float) -> str:
    """What a model's predictions on a validation split depend on, as a hex digest."""
    import hashlib

    text = json.dumps([dataset_version, score_threshold, gt], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _register(config: Config, best: dict, dataset_version: str, run_id: str) -> registry.RegisteredModel:
    with tempfile.TemporaryDirectory(prefix="trainyard-model-") as scratch:
        folder = Path(scratch)
        # Weights only: the optimizer state is half a training checkpoint and only resuming needs it.
        from steps.models.checkpoints import save_weights_only

        saved = save_weights_only(Path(best["path"]), folder / "model.pth")
        save_config(config, folder / "config.yaml")
        # What a resumed training run changed on the way (train.iterations), from its checkpoints.
        lineage = {**_lineage(config, dataset_version, run_id, best), "history": saved.get("history") or []}
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
        "select_key": config.evaluate.select_key,
    }
