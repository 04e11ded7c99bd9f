"""The end-of-run summary of a local pipeline run: what was made and where to look."""

from __future__ import annotations

import json
import math
from pathlib import Path

from steps.jsonio import write_json
from workflows.local.runner import RunResult, TaskResult

TABLE_KEYS = ["bbox/AP", "segm/AP", "segm/AP50", "dv_mAP", "EIR"]


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
                     "phase": result.phase, "stopped": result.stopped,
                     "tasks": {name: _task(t) for name, t in tasks.items()}}
    if "record" in tasks:
        summary["dataset_version"] = tasks["record"].parameters.get("dataset-version")
    if "train" in tasks and "checkpoints" in tasks["train"].artifacts:
        log = _read_json(tasks["train"].artifacts["checkpoints"] / "metrics.json") or []
        if log:
            summary["iterations"] = log[-1].get("iteration")
            summary["final_loss"] = log[-1].get("loss")
        summary["checkpoints"] = str(tasks["train"].artifacts["checkpoints"])
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
    return summary


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
    if evaluation:
        key = evaluation["select_key"]
        keys = list(dict.fromkeys([key, *TABLE_KEYS]))
        print(f"Validation metrics (best by {key}, {evaluation['select_mode']}):")
        print("  " + f"{'checkpoint':<22}" + "".join(f"{k:>11}" for k in keys))
        for row in evaluation["checkpoints"]:
            mark = " *" if row["checkpoint"] == evaluation["best"] else "  "
            cells = "".join(f"{_fmt(row['metrics'].get(k)):>11}" for k in keys)
            print(f"{mark}{row['checkpoint']:<22}{cells}")
        promotion = evaluation["promotion"]
        verdict = "promoted to production" if promotion["promoted"] else "not promoted"
        print(f"Model {promotion['model_id']}: {verdict} ({promotion['reason']})")
        print(f"  registered at {promotion['model_uri']}")
        print(f"Evaluation report: {summary['evaluation_report']}")
    if summary.get("test_report"):
        print(f"Test report: {summary['test_report']}")
        print(f"  open it: file://{summary['test_report']}")
    if not result.succeeded:
        for name, task in result.tasks.items():
            if task.status in ("Failed", "Error"):
                print(f"Step {name} failed ({task.status}: {task.message}); its log: {task.log}")
    return summary
