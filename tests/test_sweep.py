"""The sweep: its override sets, its WorkflowTemplate, and select's handling of hostile scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steps.errors import InputError
from steps.select.__main__ import parse_scores
from workflows.sweep import SWEEP_NAME, build_sweep
from workflows.sweep_sets import MAX_BRANCHES, from_file, from_grid, parameter


def test_a_grid_gives_every_combination_as_branches() -> None:
    branches = from_grid("train.lr=[0.01,0.02] model.backbone=[resnet34,resnet50]")
    assert [b["branch"] for b in branches] == ["b0", "b1", "b2", "b3"]
    assert branches[1]["overrides"] == "train.lr=0.01 model.backbone=resnet50"
    assert json.loads(parameter(branches)) == branches


def test_a_sweep_file_is_a_list_of_sets_or_a_grid(tmp_path: Path) -> None:
    listed = tmp_path / "sets.yaml"
    listed.write_text("- {train.lr: 0.01}\n- {train.lr: 0.02, model.backbone: 'resnet 50'}\n")
    assert [b["overrides"] for b in from_file(listed)] == ["train.lr=0.01", "train.lr=0.02 'model.backbone=resnet 50'"]
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  train.lr: [0.01, 0.02]\n")
    assert [b["overrides"] for b in from_file(grid)] == ["train.lr=0.01", "train.lr=0.02"]


@pytest.mark.parametrize("text, message", [
    ("- {'train.lr; rm -rf /': 1}", "is not a config key"),
    ("- {train.lr: [1, 2]}", "expected a single value"),
    ("- {}", "expected a mapping"),
    ("grid: {train.lr: []}", "non-empty list"),
    ("train.lr: 1", "expected a list of override sets"),
])
def test_bad_sweep_files_get_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as raised:
        from_file(path)
    assert str(path) in str(raised.value)


def test_a_grid_too_large_is_refused() -> None:
    values = ",".join(str(i) for i in range(MAX_BRANCHES + 1))
    with pytest.raises(InputError, match=f"at most {MAX_BRANCHES}"):
        from_grid(f"train.lr=[{values}]")


def test_the_sweep_template_records_once_and_fans_out_branches() -> None:
    manifest = build_sweep().to_dict()
    assert manifest["metadata"]["name"] == SWEEP_NAME
    templates = {t["name"]: t for t in manifest["spec"]["templates"]}
    dag = {t["name"]: t for t in templates["sweep"]["dag"]["tasks"]}
    assert "withParam" not in dag["record"] and "withParam" not in dag["select"]
    assert dag["train"]["withParam"] == "{{workflow.parameters.sweep}}"
    # Argo aggregates the train pods' `branch` maps into one JSON list of maps (operator.go
    # aggregatedJSONValueList), which evaluate fans out over with {{item.KEY}}.
    assert dag["evaluate"]["withParam"] == "{{tasks.train.outputs.parameters.branch}}"
    assert {"name": "source", "value": "{{item.source}}"} in dag["evaluate"]["arguments"]["parameters"]
    assert templates["sweep"]["parallelism"] >= 1
    # Each branch has its own durable checkpoint folder.
    assert "{{workflow.name}}-{{inputs.parameters.branch}}" in templates["train"]["container"]["args"]


def _row(name: str, **extra: object) -> dict:
    return {"checkpoint": name, "iteration": 1, "metrics": {"segm/AP": 0.5, "EIR": None}, **extra}


def test_select_reads_scores_of_branches_and_labels_them() -> None:
    rows = parse_scores(json.dumps([[_row("model_0000001.pth", branch="b1", overrides="train.lr=0.02", source="/x")],
                                    [_row("model_0000001.pth", branch="b0", overrides="train.lr=0.01", source="/y")]]))
    assert [r["checkpoint"] for r in rows] == ["b0/model_0000001.pth", "b1/model_0000001.pth"]
    assert rows[0]["metrics"]["EIR"] != rows[0]["metrics"]["EIR"]  # null is NaN again


@pytest.mark.parametrize("scores, message", [
    ("not json", "not JSON"),
    ('{"a": 1}', "list of lists"),
    ("[[]]", "no checkpoint was scored"),
    (json.dumps([[_row("../../etc/passwd")]]), "names no checkpoint"),
    (json.dumps([[{**_row("model_0000001.pth"), "metrics": {"segm/AP": "1"}}]]), "must be numbers"),
    (json.dumps([[_row("model_0000001.pth")], [_row("model_0000001.pth")]]), "scored twice"),
    (json.dumps([[_row("model_0000001.pth", branch="b0; x")]]), "not a branch name"),
])
def test_select_refuses_hostile_scores(scores: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_scores(scores)
