"""The sweep: its override sets, its WorkflowTemplate, and select's handling of hostile scores objects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steps.errors import InputError
from steps.select.scores import read_scores
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


def _objects(tmp_path: Path, groups: dict[str, object]) -> Path:
    """The scores prefix as select's input artifact holds it: one <group>/scores.json per pod."""
    folder = tmp_path / "scores"
    folder.mkdir()
    for group, scores in groups.items():
        (folder / group).mkdir(parents=True)
        (folder / group / "scores.json").write_text(scores if isinstance(scores, str) else json.dumps(scores))
    return folder


def test_select_reads_scores_of_branches_and_labels_them(tmp_path: Path) -> None:
    rows = read_scores(_objects(tmp_path, {
        "b1": [_row("model_0000001.pth", branch="b1", overrides="train.lr=0.02", source="/x")],
        "b0": [_row("model_0000001.pth", branch="b0", overrides="train.lr=0.01", source="/y")]}))
    assert [r["checkpoint"] for r in rows] == ["b0/model_0000001.pth", "b1/model_0000001.pth"]
    assert rows[0]["metrics"]["EIR"] != rows[0]["metrics"]["EIR"]  # null is NaN again


@pytest.mark.parametrize("groups, message", [
    ({"g": "not json"}, "not JSON"),
    ({"g": {"a": 1}}, "expected a JSON list of scores"),
    ({"g": []}, "no checkpoint was scored"),
    ({}, "no checkpoint was scored"),
    ({"g": [_row("../../etc/passwd")]}, "names no checkpoint"),
    ({"g": [{**_row("model_0000001.pth"), "metrics": {"segm/AP": "1"}}]}, "must be numbers"),
    ({"g": [{**_row("model_0000001.pth"), "metrics": {"segm/AP": True}}]}, "must be numbers"),
    ({"g0": [_row("model_0000001.pth")], "g1": [_row("model_0000001.pth")]}, "scored twice"),
    ({"g": [_row("model_0000001.pth", branch="b0; x")]}, "not a branch name"),
    # issue 27: absurd nesting is one clear error, not a RecursionError
    ({"g": "[" * 50_000 + "]" * 50_000}, "nested too deeply"),
])
def test_select_refuses_hostile_scores(tmp_path: Path, groups: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_scores(_objects(tmp_path, groups))


def test_select_refuses_a_scores_object_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from steps.select import scores

    monkeypatch.setattr(scores, "MAX_OBJECT_BYTES", 100)
    with pytest.raises(InputError, match="more than 100"):
        read_scores(_objects(tmp_path, {"g": [_row("model_0000001.pth")] * 3}))


def test_a_nested_scores_object_is_one_line_from_the_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = _objects(tmp_path, {"g": "[" * 50_000 + "]" * 50_000})
    done = subprocess.run([sys.executable, "-m", "steps.select", "--scores", str(folder), "--dataset-dir", str(tmp_path),
                           "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith("scores.json: JSON nested too deeply; expected a list of scores")
