"""The end-of-run summary of a local pipeline run: what was made and where to look."""

from __future__ import annotations

import json
import math
from pathlib import Path

from steps.reports.class_metrics import group_values
from steps.jsonio import write_json
from workflows.local.runner import RunResult, TaskResult

TABLE_KEYS = ["segm/AP", "dv_mAP", "EIR"]


def _read_json(path: Path) -> object | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _fmt(value: float | None) -> str:
    return "  -   " if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:6.3f}"


def _task(task: TaskResult) -> dict:
    facts: dict = {"status": task.status, "seconds": round(task.seconds, 1)}
    if task.message:  # Argo's node message: why it failed, was skipped or omitted
        facts["message"] = task.message
    return facts


def summarize(result: RunResult) -> dict:
    """The facts of a run, from its tasks' outputs (also written to summary.json)."""
    tasks = result.tasks
    summary: dict = {"run_id": result.run_id, "run_dir": str(result.run_dir), "succeeded": result.succeeded,
                     "phase": result.phase, "stopped": result.stopped, "refusals": result.refusals,
                     "tasks": {name: _task(t) for name, t in tasks.items()}}
    if "record" in tasks:
        summary["dataset_version"] = tasks["record"].parameters.get("dataset-version")
    if "train" in tasks and "checkpoints" in tasks["train"].artifacts:
        log = _read_json(tasks["train"].artifacts["checkpoints"] / "metrics.json") or []
        if log:
            summary["iterations"] = log[-1].get("iteration")
            summary["final_loss"] = log[-1].get("loss")
        summary["checkpoints"] = str(tasks["train"].artifacts["checkpoints"])
        if (tasks["train"].artifacts["checkpoints"] / "tensorboard").is_dir():
            # The run's folder: the training losses and select's validation AP and drawings together.
            summary["tensorboard"] = str(result.run_dir)
    if "select" in tasks and "evaluation" in tasks["select"].artifacts:
        folder = tasks["select"].artifacts["evaluation"]
        evaluation = _read_json(folder / "evaluation.json")
        if isinstance(evaluation, dict):
            summary["evaluation"] = evaluation
            summary["evaluation_report"] = str(folder / "report.html")
        summary["promoted"] = tasks["select"].parameters.get("promoted")
        summary["model_uri"] = tasks["select"].parameters.get("model-uri")
    if "test" in tasks and "report" in tasks["test"].artifacts:
        summary["test_report"] = str(tasks["test"].artifacts["report"] / "index.html")
        test_metrics = _read_json(tasks["test"].artifacts["report"] / "metrics.json")
        if isinstance(test_metrics, dict):
            summary["test_metrics"] = test_metrics
    return summary


def _class_columns(metrics: dict, groups: dict[str, list[str]]) -> dict[str, float]:
    """Mask AP50 of each class group (evaluate.class_groups): what the overall mean hides."""
    return {name.replace(" mask ", " "): value for name, value in group_values(metrics, groups).items()}


def _evaluation_config(summary: dict):  # -> Config | None
    """The config the evaluate step saved beside its report; None without one."""
    config = Path(summary.get("evaluation_report") or ".").parent / "config.yaml"
    try:
        from steps.config import load_config

        return load_config(config)
    except Exception:  # no evaluation, or a config this version cannot read
        return None


def print_summary(result: RunResult) -> dict:
    summary = summarize(result)
    write_json(result.run_dir / "summary.json", summary)
    print()
    stopped = " (stopped)" if result.stopped else ""
    print(f"Run {result.run_id}: {'succeeded' if result.succeeded else result.phase.upper()}{stopped}")
    for name, task in summary["tasks"].items():
        print(f"  {name:<9} {task['status']:<10} {task['seconds']:>7.1f}s")
    if summary.get("dataset_version"):
        print(f"Dataset version: {summary['dataset_version']}")
    if "iterations" in summary:
        print(f"Training: {summary['iterations']} iterations, final loss {_fmt(summary.get('final_loss')).strip()}")
    evaluation = summary.get("evaluation")
    config = _evaluation_config(summary)
    groups = config.evaluate.class_groups if config else {}
    if evaluation:
        key = evaluation["select_key"]
        print(f"Validation metrics (mask AP50 per class; best by {key}, {evaluation['select_mode']}):")
        rows = [(row["checkpoint"], {**_class_columns(row["metrics"], groups), **row["metrics"]})
                for row in evaluation["checkpoints"]]
        derived = [k for k in (_class_columns(rows[0][1], groups) if rows else {})
                   if not (key == f"segm/AP50-{k.removesuffix(' AP50')}")]  # the same number twice
        present = [k for k in TABLE_KEYS if any(k in metrics for _, metrics in rows)]  # no dv_mAP/EIR without plates
        keys = list(dict.fromkeys([key, *derived, *present]))
        width = max(11, *(len(k) + 2 for k in keys))
        print("  " + f"{'checkpoint':<22}" + "".join(f"{k:>{width}}" for k in keys))
        for name, metrics in rows:
            mark = " *" if name == evaluation["best"] else "  "
            print(f"{mark}{name:<22}" + "".join(f"{_fmt(metrics.get(k)):>{width}}" for k in keys))
        promotion = evaluation["promotion"]
        verdict = "promoted to production" if promotion["promoted"] else "not promoted"
        print(f"Model {promotion['model_id']}: {verdict} ({promotion['reason']})")
        print(f"  registered at {promotion['model_uri']}")
        if config:
            print(f"  models: trainyard models list --registry {config.promotion.registry}")
    test_metrics = summary.get("test_metrics")
    if test_metrics:
        cells = {**_class_columns(test_metrics, groups), **{k: test_metrics[k] for k in TABLE_KEYS if k in test_metrics}}
        print("Test split: " + "  ".join(f"{k} {_fmt(v).strip()}" for k, v in cells.items()))
    if summary.get("tensorboard"):
        print(f"TensorBoard: tensorboard --logdir {summary['tensorboard']}")
    if summary.get("evaluation_report"):
        print(f"Evaluation report: file://{summary['evaluation_report']}")
    if summary.get("test_report"):
        print(f"Test report: file://{summary['test_report']}")
    for refusal in result.refusals:
        print(f"Refused by the local runner (not an outcome Argo would give): {refusal}")
    if not result.succeeded:
        for name, task in result.tasks.items():
            if task.status in ("Failed", "Error"):
                print(f"Step {name} failed ({task.status}: {task.message}); its log: {task.log}")
    return summary
