"""End to end: the rendered WorkflowTemplate's whole DAG on a tiny dataset, on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.test_report import parsed
from workflows.local.run import run_local

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TINY = {
    "dataset": {"val_fraction": 0.25, "test_fraction": 0.25},
    "model": {"backbone": "resnet18", "min_size": 96, "max_size": 128, "roi_batch_size_per_image": 32},
    "train": {"iterations": 2, "batch_size": 2, "warmup_iters": 1, "checkpoint_period": 1, "log_period": 1,
              "num_workers": 0},
    "evaluate": {"score_threshold": 0.2, "class_groups": {"plate": ["plate"], "characters": ["*"]}},
    # Two iterations find nothing: let that first model become production so the test step has one.
    "promotion": {"min_first_score": None},
    "test": {"max_images": 4},
}


def test_local_run_of_the_whole_pipeline(sample_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY, sort_keys=False))
    runs = tmp_path / "runs"

    first = run_local(config, [], {}, runs, str(sample_repo))
    out = capsys.readouterr().out

    assert first.succeeded, out
    assert [t for t in first.tasks] == ["record", "train", "evaluate", "select", "test", "notify"]
    # evaluate fanned out: one pod per checkpoint (evaluate.checkpoints_per_pod: 1)
    assert [c.name for c in first.tasks["evaluate"].children] == [
        "evaluate(0:checkpoints:model_0000001.pth,group:model_0000001)",
        "evaluate(1:checkpoints:model_0000002.pth,group:model_0000002)"]
    assert first.tasks["record"].parameters["dataset-version"] == "datasets/v1"
    # train: checkpoints, the loss log, TensorBoard events and the resolved config
    train = first.tasks["train"].artifacts["checkpoints"]
    assert sorted(p.name for p in train.rglob("model_*.pth")) == ["model_0000001.pth", "model_0000002.pth"]
    assert json.loads((train / "metrics.json").read_text())[-1]["iteration"] == 2
    assert list((train / "tensorboard").rglob("events.out.tfevents.*"))
    assert yaml.safe_load((train / "config.yaml").read_text())["train"]["iterations"] == 2
    # select: every checkpoint's scores gathered, the best one registered and (first model) promoted
    evaluation = json.loads((first.tasks["select"].artifacts["evaluation"] / "evaluation.json").read_text())
    assert [row["checkpoint"] for row in evaluation["checkpoints"]] == ["model_0000001.pth", "model_0000002.pth"]
    assert {"bbox/AP", "segm/AP", "dv_mAP", "EIR"} <= set(evaluation["checkpoints"][0]["metrics"])
    assert first.tasks["select"].parameters["promoted"] == "true"
    production = json.loads((runs / "registry" / "production.json").read_text())
    assert production["model_id"] == evaluation["promotion"]["model_id"]
    assert (runs / "registry" / "models" / production["model_id"] / "model.pth").is_file()
    # test: drawn images and the report page
    report = first.tasks["test"].artifacts["report"]
    page = (report / "index.html").read_text()
    drawn = sorted((report / "images").glob("*.jpg"))
    assert drawn and all(f"images/{p.name}" in page for p in drawn)
    assert json.loads((report / "predictions.json").read_text()) is not None
    # every test plate's truth and reading, what EIR counted (scripts/bench_demo.py reads it)
    plates = json.loads((report / "plates.json").read_text())
    assert plates["plates"] == len(plates["reads"]) > 0 and 0 <= plates["exact"] <= plates["plates"]
    assert plates["EIR"] == json.loads((report / "metrics.json").read_text())["EIR"]
    assert {"image_id", "truth", "read"} <= set(plates["reads"][0])
    # ... and both reports as one page each, what the Argo UI shows (a file, on Argo as locally:
    # the step writes the artifact's path), its images linked, not inlined (steps/reports/argo_page.py),
    # and the links reach the drawn files
    pages = {name: path for name, path in first.tasks["test"].artifacts.items() if name.endswith("-report")}
    test_page = pages["test-report"].read_text()
    assert "data:" not in test_page and f'src="report/images/{drawn[0].name}"' in test_page
    assert (pages["test-report"].parent / "report" / "images" / drawn[0].name).is_file()
    assert pages["evaluation-report"].read_text().lstrip().lower().startswith("<!doctype html")
    # Locally the two folder reports link each other (select's evaluation <-> test's report).
    evaluation_page = (first.tasks["select"].artifacts["evaluation"] / "report.html").read_text()
    # (each pod's files lie in <run>/<task>/ as in the pod: /work/outputs/... in its /work volume)
    assert 'href="../../../../../test/volumes/work/outputs/report/index.html"' in evaluation_page
    assert 'href="../../../../../select/volumes/work/outputs/evaluation/report.html"' in page
    # the summary says where everything is
    assert "Dataset version: datasets/v1" in out and "Training: 2 iterations" in out
    assert "Validation metrics" in out and str(report / "index.html") in out
    summary = json.loads((first.run_dir / "summary.json").read_text())
    assert summary["succeeded"] and summary["dataset_version"] == "datasets/v1"

    # A second run reuses the recorded version (record is idempotent) and, forced to retrain on it,
    # competes with production; the sample's few validation images are not enough evidence (and a
    # margin of 1.0 could not be beaten), so the challenger is registered but refused.
    second = run_local(config, ["train.iterations=1", "promotion.margin=1.0"], {"force-retrain": "true"}, runs,
                       str(sample_repo))
    out = capsys.readouterr().out
    assert second.succeeded, out
    assert "already recorded" in out
    evaluation = json.loads((second.tasks["select"].artifacts["evaluation"] / "evaluation.json").read_text())
    assert evaluation["champion"]["model_id"] == production["model_id"]
    assert evaluation["promotion"]["promoted"] is False and "not enough evidence" in evaluation["promotion"]["reason"]
    assert second.tasks["select"].parameters["promoted"] == "false"
    assert json.loads((runs / "registry" / "production.json").read_text())["model_id"] == production["model_id"]
    assert (runs / "registry" / "models" / evaluation["promotion"]["model_id"] / "lineage.json").is_file()
    assert "not promoted" in out
    # Both decisions, with their scores, are in the database.
    from steps.db import Database

    with Database(f"sqlite:///{runs / 'trainyard.sqlite'}").transaction() as tx:
        rows = tx.query("SELECT promoted, champion_model_id, challenger_score FROM promotions ORDER BY id")
    assert [(r[0], r[1]) for r in rows] == [(1, None), (0, production["model_id"])]
    assert all(r[2] is not None for r in rows)
    # The exit handler ran after each DAG, as on Argo, and recorded both runs' outcomes.
    with Database(f"sqlite:///{runs / 'trainyard.sqlite'}").transaction() as tx:
        outcomes = tx.query("SELECT run_id, status FROM pipeline_runs ORDER BY id")
    assert outcomes == [(first.run_id, "Succeeded"), (second.run_id, "Succeeded")]
    # test scored this run's own (refused) model, with production's scores beside it.
    comparison = json.loads((second.tasks["test"].artifacts["report"] / "comparison.json").read_text())
    assert comparison["model"] == evaluation["promotion"]["model_id"] and comparison["production"] == production["model_id"]
    assert "not in production" in (second.tasks["test"].artifacts["report"] / "index.html").read_text()
    # The test report of a real run keeps its numbers once production exists: the headline tiles
    # (with their interval and production's figure), the class groups and every class, and a
    # metrics table of numbers side by side, never "0.0127 production 0.3457 (-0.3330)" strings.
    test_page = parsed(second.tasks["test"].artifacts["report"] / "index.html")
    text = test_page.all_text()
    assert "plate mask AP50" in text and "characters mask AP50" in text and "95% CI" in text
    assert text.count("production ") >= 4 and "No per-class metrics" not in text
    kinds = [(kind, cells[0]) for kind, cells in test_page.rows if kind in ("group", "class")]
    # Two groups, then each digit the test split holds (the mean is over those; the plate, a group
    # of one, is not listed twice).
    digits = len(kinds) - 2
    assert kinds[:2] == [("group", "plate"), ("group", f"characters (mean of {digits})")] and digits >= 5
    header = next(cells for _, cells in test_page.rows if cells and cells[0] == "metric")
    assert header == ["metric", "this model", "production", "difference"]
    segm = next(cells for _, cells in test_page.rows if cells and cells[0] == "segm/AP")
    assert all(float(cell) == float(cell) for cell in segm[1:3])  # numbers, not strings
    # each drawn image beside production's drawing and the ground truth, its detections judged
    alts = [str(a["alt"]) for a in test_page.attrs_of("img")]
    assert alts[1].startswith("production on ") and alts[2].startswith("ground truth of ")
    assert "Without ground truth" not in text and " missed" in text

    # Nothing changed and a model was trained on this version: a third run skips the GPU steps.
    third = run_local(config, [], {}, runs, str(sample_repo))
    assert third.succeeded and third.tasks["record"].parameters["needs-training"] == "false"
    assert [third.tasks[name].status for name in ("train", "evaluate", "select", "test")] == ["Skipped"] * 4


def test_fan_out_evaluation_of_three_checkpoints_in_parallel_promotes_once(sample_repo: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], "iterations": 3},
                                      "evaluate": {**TINY["evaluate"], "checkpoints_per_pod": 2}}))
    runs = tmp_path / "runs"
    result = run_local(config, [], {}, runs, str(sample_repo), parallel=2)
    out = capsys.readouterr().out
    assert result.succeeded, out
    # Three checkpoints in groups of two: two evaluate pods; select saw all three.
    group = result.tasks["evaluate"]
    assert [c.name for c in group.children] == [
        "evaluate(0:checkpoints:model_0000001.pth,model_0000002.pth,group:model_0000001)",
        "evaluate(1:checkpoints:model_0000003.pth,group:model_0000003)"]
    # Each pod wrote one object under the run's scores prefix, which select read as one folder.
    scores = sorted((result.run_dir / "objects" / "trainyard" / result.run_id / "scores").glob("*/scores.json"))
    assert [(p.parent.name, len(json.loads(p.read_text()))) for p in scores] == [("model_0000001", 2), ("model_0000003", 1)]
    loaded = result.run_dir / "select" / "volumes" / "work" / "inputs" / "scores"  # /work/inputs/scores in its pod
    assert sorted(p.relative_to(loaded).as_posix() for p in loaded.rglob("*.json")) == [
        "model_0000001/scores.json", "model_0000003/scores.json"]
    evaluation = json.loads((result.tasks["select"].artifacts["evaluation"] / "evaluation.json").read_text())
    assert [row["checkpoint"] for row in evaluation["checkpoints"]] == [
        "model_0000001.pth", "model_0000002.pth", "model_0000003.pth"]
    # ... and exactly one promotion decision, by select.
    from steps.db import Database

    with Database(f"sqlite:///{runs / 'trainyard.sqlite'}").transaction() as tx:
        decisions = tx.query("SELECT promoted FROM promotions")
    assert decisions == [(1,)]
    assert json.loads((runs / "registry" / "production.json").read_text())["model_id"] == evaluation["promotion"]["model_id"]


def test_a_two_branch_sweep_records_once_and_promotes_the_best_branch_once(
        sample_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workflows.sweep_sets import from_grid

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY, sort_keys=False))
    runs = tmp_path / "runs"
    result = run_local(config, [], {}, runs, str(sample_repo), parallel=2,
                       sweep=from_grid("train.lr=[0.01,0.02]"))
    out = capsys.readouterr().out
    assert result.succeeded, out
    assert [t for t in result.tasks] == ["record", "train", "evaluate", "select", "notify"]
    assert [c.name for c in result.tasks["train"].children] == ["train(0:branch:b0,overrides:train.lr=0.01)",
                                                                 "train(1:branch:b1,overrides:train.lr=0.02)"]
    assert len(result.tasks["evaluate"].children) == 2
    evaluation = json.loads((result.tasks["select"].artifacts["evaluation"] / "evaluation.json").read_text())
    assert [(b["branch"], b["overrides"], b["checkpoints"]) for b in evaluation["branches"]] == [
        ("b0", "train.lr=0.01", 2), ("b1", "train.lr=0.02", 2)]
    assert sorted(row["checkpoint"] for row in evaluation["checkpoints"]) == [
        "b0/model_0000001.pth", "b0/model_0000002.pth", "b1/model_0000001.pth", "b1/model_0000002.pth"]
    page = (result.tasks["select"].artifacts["evaluation"] / "report.html").read_text()
    assert "Branches" in page and "train.lr=0.02" in page
    # a sweep has no test step: no link to a test report; TensorBoard names the branches' durable
    # folder (the select step's download of the best branch is gone once it ends)
    assert "test report" not in page and f"train:{result.run_dir / 'durable-checkpoints'}" in page
    assert "one line per branch" in page  # the chart draws one line per branch
    # every step's line is prefixed by the step and its index, not its whole item (the overrides)
    assert "  train(0) | " in out and not [line for line in out.splitlines() if " | " in line and "overrides:" in line]
    # the durable copies of the checkpoints are hard links of train's own files, not copies
    durable = sorted((result.run_dir / "durable-checkpoints").rglob("model_*.pth"))
    assert durable and all(path.stat().st_nlink == 2 for path in durable)
    # The registered model carries its branch's settings; one decision, one promotion.
    model = evaluation["promotion"]["model_id"]
    saved = yaml.safe_load((runs / "registry" / "models" / model / "config.yaml").read_text())
    assert saved["train"]["lr"] == (0.01 if evaluation["best"].startswith("b0/") else 0.02)
    from steps.db import Database

    with Database(f"sqlite:///{runs / 'trainyard.sqlite'}").transaction() as tx:
        assert tx.query("SELECT promoted FROM promotions") == [(1,)]
        assert len(tx.query("SELECT id FROM training_datasets")) == 1


def test_a_dataset_without_plates_goes_through_every_step_with_per_class_reports(
        shapes_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """12 classes of coloured shapes (labelme rectangles and polygons), no plate: the default
    select key, per-class tables only (the plate groups of the config form no group here), no
    dv_mAP or EIR anywhere, and every test image judged against its ground truth. The select key
    is the shipped local config's (EIR first): on this dataset it falls back to segm/AP."""
    shipped = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "local.yaml").read_text())
    config = tmp_path / "tiny.yaml"
    settings = {**TINY, "evaluate": {**TINY["evaluate"], "select_key": shipped["evaluate"]["select_key"]}}
    assert "EIR" in settings["evaluate"]["select_key"]
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    runs = tmp_path / "runs"
    result = run_local(config, [], {}, runs, str(shapes_repo))
    out = capsys.readouterr().out
    assert result.succeeded, out
    assert [result.tasks[t].status for t in ("record", "train", "evaluate", "select", "test")] == ["Succeeded"] * 5
    evaluation = json.loads((result.tasks["select"].artifacts["evaluation"] / "evaluation.json").read_text())
    assert evaluation["select_key"] == "segm/AP"
    labels = {shape["label"] for path in (shapes_repo / "annotations").glob("*.json")
              for shape in json.loads(path.read_text())["shapes"]}
    assert len(labels) == 12 and "plate" not in labels  # more classes than the plate set's 11
    metrics = evaluation["checkpoints"][0]["metrics"]
    classes = sorted(k.removeprefix("segm/AP50-") for k in metrics if k.startswith("segm/AP50-"))
    assert set(classes) <= labels and not {"dv_mAP", "EIR"} & set(metrics)
    # the summary has no dv_mAP or EIR column
    header = next(line for line in out.splitlines() if line.strip().startswith("checkpoint"))
    assert header.split() == ["checkpoint", "segm/AP"]
    # both reports: one row per class, no group, no plate metric
    for page_path in (result.tasks["select"].artifacts["evaluation"] / "report.html",
                      result.tasks["test"].artifacts["report"] / "index.html"):
        page = parsed(page_path)
        text = page.all_text().split("Resolved config")[0]  # the config itself names the plate groups
        rows = [(kind, cells[0]) for kind, cells in page.rows if kind in ("group", "class")]
        assert sorted(name for _, name in rows) == classes and {kind for kind, _ in rows} == {"class"}, page_path
        assert "characters" not in text and "dv_mAP" not in text and "EIR" not in text, page_path
        assert "mask AP50" in text and "95% CI" in text, page_path
    test_text = parsed(result.tasks["test"].artifacts["report"] / "index.html").all_text()
    assert "Without ground truth" not in test_text and " TP · " in test_text
    assert "Errors: objects missed, false detections (most first)" in test_text and "plates misread" not in test_text
    # the validation AP per checkpoint is in TensorBoard, beside the training losses
    assert list((result.tasks["select"].artifacts["evaluation"] / "tensorboard").glob("events.out.tfevents.*"))
