"""The nightly run trains only on new data: record says whether the version needs training, and
train/evaluate/test carry a `when:` on it (or on `force-retrain`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steps.db import Database
from steps.record.__main__ import main as record_main
from steps.record.training_needed import needs_training
from workflows.pipeline import TRAIN_WHEN, build_pipeline
from workflows.local.templating import substitute
from workflows.local.when import should_execute


def _register_model(url: str, version: str) -> None:
    """The row evaluate leaves for a model it registered (steps/evaluate/store.py)."""
    with Database(url).transaction() as tx:
        tx.execute("INSERT INTO models (model_id, run_id, dataset_version, uri, metrics, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                   ("m-1", "run-1", version, "/registry/models/m-1", json.dumps({}), "t"))


def test_needs_training_is_true_for_new_or_untrained_versions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    db = Database(url)
    db.migrate()
    assert needs_training(db, "datasets/v3", created=True)
    assert needs_training(db, "datasets/v3", created=False)  # recorded earlier, never trained on
    _register_model(url, "datasets/v3")
    assert not needs_training(db, "datasets/v3", created=False)
    assert needs_training(db, "datasets/v4", created=False)


@pytest.mark.integration
def test_record_outputs_whether_training_is_needed(sample_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    monkeypatch.setenv("TRAINYARD_DATABASE_URL", url)
    out = tmp_path / "outputs"
    args = ["--repo", str(sample_repo), "--set-list", "dataset.val_fraction=0.25 dataset.test_fraction=0.25",
            "--output-version", str(out / "dataset-version"), "--output-needs-training", str(out / "needs-training")]
    assert record_main(args) == 0
    assert (out / "needs-training").read_text() == "true"  # a new version
    assert record_main(args) == 0
    assert (out / "needs-training").read_text() == "true"  # recorded, but no model yet
    _register_model(url, (out / "dataset-version").read_text())
    assert record_main(args) == 0
    assert (out / "needs-training").read_text() == "false"  # nothing changed: the nightly skips


@pytest.mark.parametrize(("needed", "force", "runs"), [
    ("true", "false", True), ("false", "false", False), ("false", "true", True), ("true", "true", True)])
def test_train_evaluate_and_test_run_only_when_needed_or_forced(needed: str, force: str, runs: bool) -> None:
    """Argo evaluates `when` with govaluate after substituting the tags (workflow/controller/steps.go
    `shouldExecute`; dag.go `resolveDependencyReferences` resolves `when` first and skips the task
    without resolving the rest); quoted operands compare as strings."""
    tasks = {t["name"]: t for t in build_pipeline().to_dict()["spec"]["templates"] if "dag" in t}["pipeline"]["dag"]["tasks"]
    values = {"tasks.record.outputs.parameters.needs-training": needed, "workflow.parameters.force-retrain": force}
    for task in tasks:
        if task["name"] == "record":
            assert "when" not in task
            continue
        assert task["when"] == TRAIN_WHEN
        assert should_execute(substitute(task["when"], values, task["name"])) is runs
