"""The end-of-run summary of a local run: per-class figures, the test split, where to look next."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steps.config import Config, save_config
from workflows.local import RunResult, TaskResult
from workflows.local.summary import print_summary


def _metrics(plate: float, chars: float) -> dict[str, float]:
    metrics = {"segm/AP": 0.2, "dv_mAP": 0.4, "EIR": 0.0, f"segm/AP50-plate": plate}
    metrics |= {f"segm/AP-{d}": chars / 2 for d in "0123"} | {f"segm/AP50-{d}": chars for d in "0123"}
    return metrics | {"segm/AP-plate": plate / 2}


def test_summary_shows_the_class_groups_ap50_tensorboard_and_file_links(tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "local-1"
    train, evaluation, report = run / "train" / "checkpoints", run / "evaluate" / "evaluation", run / "test" / "report"
    for folder in (train / "tensorboard", evaluation, report):
        folder.mkdir(parents=True)
    (train / "metrics.json").write_text(json.dumps([{"iteration": 180, "loss": 1.1}]))
    save_config(Config.model_validate({"evaluate": {"class_groups": {"plate": ["plate"], "chars": ["*"]}}}),
                evaluation / "config.yaml")
    (evaluation / "evaluation.json").write_text(json.dumps({
        "select_key": "segm/AP50-plate", "select_mode": "max", "best": "model_0000180.pth",
        "checkpoints": [{"checkpoint": "model_0000180.pth", "iteration": 180, "metrics": _metrics(0.9, 0.5)}],
        "promotion": {"promoted": True, "reason": "first model", "model_id": "m1", "model_uri": "runs/registry/models/m1"},
    }))
    (report / "metrics.json").write_text(json.dumps(_metrics(0.85, 0.4)))
    tasks = {"train": TaskResult("train", "Succeeded", artifacts={"checkpoints": train}),
             "select": TaskResult("select", "Succeeded", artifacts={"evaluation": evaluation}),
             "test": TaskResult("test", "Succeeded", artifacts={"report": report})}

    print_summary(RunResult("local-1", run, tasks))

    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.strip().startswith("checkpoint"))
    assert header.split() == ["checkpoint", "segm/AP50-plate", "chars", "AP50", "segm/AP", "dv_mAP", "EIR"]  # no plate twice
    assert " *model_0000180.pth" in out and " 0.900 " in out and " 0.500 " in out
    assert "Test split: plate AP50 0.850  chars AP50 0.400  segm/AP 0.200  dv_mAP 0.400  EIR 0.000" in out
    assert f"TensorBoard: tensorboard --logdir {run}" in out  # training losses and validation AP together
    assert f"Evaluation report: file://{evaluation / 'report.html'}" in out
    assert f"Test report: file://{report / 'index.html'}" in out
    assert out.count("first model") == 1
    assert f"models: trainyard models list --registry {Config().promotion.registry}" in out
