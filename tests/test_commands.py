"""`trainyard coco-eval` and `trainyard models` as users call them."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from steps import registry
from workflows.cli import main


def _trainyard(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _coco_files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(7)
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 150} for i in range(1, 6)]
    categories = [{"id": 1, "name": "plate"}, {"id": 2, "name": "7"}]
    annotations, results = [], []
    for i in range(1, 6):
        for cat in (1, 2):
            x, y, w, h = (float(v) for v in rng.uniform([5, 5, 20, 20], [100, 80, 60, 50]))
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": cat, "bbox": [x, y, w, h],
                                "area": w * h, "iscrowd": 0,
                                "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]]})
            jitter = rng.normal(0, 4, 4)
            results.append({"image_id": i, "category_id": cat, "score": float(rng.uniform(0.3, 1)),
                            "bbox": [x + jitter[0], y + jitter[1], w + jitter[2], h + jitter[3]]})
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    res = tmp_path / "results.json"
    res.write_text(json.dumps(results))
    return gt, res


def _pycocotools_stats(gt: Path, res: Path, iou_type: str) -> list[float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with redirect_stdout(io.StringIO()):
        coco = COCO(str(gt))
        reference = COCOeval(coco, coco.loadRes(str(res)), iou_type)
        reference.evaluate()
        reference.accumulate()
        reference.summarize()
    return [float(v) for v in reference.stats[:6]]


def test_coco_eval_json_equals_pycocotools(tmp_path: Path) -> None:
    gt, res = _coco_files(tmp_path)
    code, out, _ = _trainyard("coco-eval", str(gt), str(res), "--json")
    assert code == 0
    ours = json.loads(out)
    for key, value in zip(["AP", "AP50", "AP75", "APs", "APm", "APl"], _pycocotools_stats(gt, res, "bbox")):
        expected = None if value < 0 else value
        assert ours[key] == pytest.approx(expected, abs=1e-9) if expected is not None else ours[key] is None
    assert set(ours["per_class"]) == {"plate", "7"}


def test_coco_eval_table_and_errors(tmp_path: Path) -> None:
    gt, res = _coco_files(tmp_path)
    code, out, _ = _trainyard("coco-eval", str(gt), str(res))
    assert code == 0 and "AP50" in out and "plate" in out
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    code, _, err = _trainyard("coco-eval", str(gt), str(broken))
    assert code == 2 and err.startswith(f"error: {broken}: not valid JSON")


def _register(root: Path, name: str, score: float) -> str:
    folder = root / f"model-{name}"
    folder.mkdir()
    (folder / "model.pth").write_bytes(name.encode())
    (folder / "config.yaml").write_text("model: {}\n")
    return registry.register(str(root / "registry"), folder, name, {"segm/AP": score}, {"dataset_version": "datasets/v1"}).model_id


def test_models_list_promote_rollback(tmp_path: Path) -> None:
    reg = str(tmp_path / "registry")
    first, second = _register(tmp_path, "a", 0.1), _register(tmp_path, "b", 0.2)
    assert _trainyard("models", "--registry", reg, "promote", first)[0] == 0
    assert _trainyard("models", "--registry", reg, "promote", second)[0] == 0
    code, out, _ = _trainyard("models", "--registry", reg, "list")
    header, *lines = out.splitlines()
    assert code == 0 and header.split()[:2] == ["model", "created"] and len(lines) == 2
    assert lines[1].startswith(f"* {second}") and lines[0].startswith(f"  {first}")
    # each line: the date, the dataset version, the run and the selection key's value
    assert lines[1].split()[2:5] == [registry.show(reg, second).created_at[:10], registry.show(reg, second).created_at[11:16],
                                     "datasets/v1"] and lines[1].endswith("segm/AP = 0.2000")
    code, out, _ = _trainyard("models", "--registry", reg, "show", "production")
    summary, _, details = out.partition("\n\n")
    assert summary.splitlines()[0] == f"model      {second}  (production)" and "segm/AP = 0.2000" in summary
    assert json.loads(details)["model_id"] == second
    code, out, _ = _trainyard("models", "--registry", reg, "rollback")
    assert code == 0 and registry.production(reg)["model_id"] == first
    # the rolled-back model stays in the history, with why it left
    code, out, _ = _trainyard("models", "--registry", reg, "history")
    actions = [line.split()[1:3] for line in out.splitlines()]
    assert actions == [["promote", first], ["promote", second], ["rollback", first]]
    assert f"(rolled back {second})" in out.splitlines()[-1]


def test_promoting_a_model_far_below_production_needs_force(tmp_path: Path) -> None:
    reg = str(tmp_path / "registry")
    good, poor, close = _register(tmp_path, "a", 0.6), _register(tmp_path, "b", 0.2), _register(tmp_path, "c", 0.58)
    assert _trainyard("models", "--registry", reg, "promote", good)[0] == 0
    code, _, err = _trainyard("models", "--registry", reg, "promote", poor)
    assert code == 2 and "segm/AP = 0.2000" in err and "-0.4000" in err and "--force" in err
    assert registry.production(reg)["model_id"] == good
    assert _trainyard("models", "--registry", reg, "promote", close)[0] == 0  # within 0.05: no question asked
    assert _trainyard("models", "--registry", reg, "promote", poor, "--force")[0] == 0
    assert registry.production(reg)["model_id"] == poor


def test_models_unknown_id_is_one_line(tmp_path: Path) -> None:
    code, _, err = _trainyard("models", "--registry", str(tmp_path / "registry"), "show", "nope")
    assert code == 2 and err.count("\n") == 1 and "nope" in err


def _first_result(res: Path) -> dict:
    return json.loads(res.read_text())[0]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"bbox": "10,10,5,5"}, "predictions[0].bbox: expected [x, y, width, height]"),
        ({"bbox": [10, 10, -5, 5]}, "width and height must be >= 0"),
        ({"score": float("nan")}, "predictions[0]: score nan is not a finite number"),
        ({"score": "0.9"}, "predictions[0]: score '0.9' is not a finite number"),
        ({"image_id": [1]}, "predictions[0]: image_id [1] is not an image"),
    ],
    ids=["string-bbox", "negative-width", "nan-score", "string-score", "list-image-id"],
)
def test_coco_eval_bad_detection_is_one_line_naming_the_file(tmp_path: Path, change: dict, expected: str) -> None:
    gt, res = _coco_files(tmp_path)
    results = json.loads(res.read_text())
    results[0].update(change)
    res.write_text(json.dumps(results))  # json writes NaN as the literal Python's json reads back
    code, _, err = _trainyard("coco-eval", str(gt), str(res))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {res}: ") and expected in err


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([1, "x"], "predictions[0]: expected an object"),
        ([{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": {"size": [150, 200], "counts": "zz"}}],
         "predictions[0].segmentation: not a valid RLE"),
        ([{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": {"size": [150, 200], "counts": "0T3"}}],
         "runs cover 100 pixels"),
        ([{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": {"size": [10, 10], "counts": "0T3"}}],
         "is not the image's [height, width] [150, 200]"),
        ([{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": [[1, 2, 3]]}],
         "expected an RLE object or a list of polygons"),
    ],
    ids=["non-dict-items", "malformed-rle", "short-rle", "rle-of-another-size", "short-polygon"],
)
def test_coco_eval_bad_segm_results_are_one_line(tmp_path: Path, results: list, expected: str) -> None:
    gt, res = _coco_files(tmp_path)
    res.write_text(json.dumps(results))
    code, _, err = _trainyard("coco-eval", str(gt), str(res), "--iou-type", "segm")
    assert code == 2 and err.count("\n") == 1 and expected in err, err


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda gt: gt.update(images="x"), "not a COCO ground truth"),
        (lambda gt: gt["images"][0].pop("height"), "images[0]: needs an integer id, height and width"),
        (lambda gt: gt["annotations"][0].update(image_id=99), "annotations[0]: image_id 99 is not in images"),
        (lambda gt: gt["annotations"][0].update(bbox=[0, 0, -1, 3]), "annotations[0].bbox: width and height"),
        (lambda gt: gt["categories"].append("plate"), "categories[2]: needs an integer id and a name"),
        (lambda gt: gt["images"].append(dict(gt["images"][0])), "id 1 is already the id of an earlier image"),
        (lambda gt: gt["annotations"][0].pop("segmentation"), "annotations[0]: no segmentation; segm AP needs"),
    ],
    ids=["images-not-a-list", "image-without-height", "unknown-image", "negative-gt-box", "category-not-object",
         "repeated-image-id", "segm-without-mask"],
)
def test_coco_eval_bad_ground_truth_is_one_line(tmp_path: Path, edit, expected: str) -> None:
    gt, res = _coco_files(tmp_path)
    data = json.loads(gt.read_text())
    edit(data)
    gt.write_text(json.dumps(data))
    code, _, err = _trainyard("coco-eval", str(gt), str(res), "--iou-type", "segm")
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {gt}: ") and expected in err, err


def test_coco_eval_non_utf8_file_is_one_line(tmp_path: Path) -> None:
    gt, res = _coco_files(tmp_path)
    res.write_bytes(b'[{"image_id": 1, "note": "\xff\xfe"}]')
    code, _, err = _trainyard("coco-eval", str(gt), str(res))
    assert code == 2 and err == f"error: {res}: not UTF-8 text (byte 26); save it as UTF-8 JSON\n"


def test_coco_eval_accepts_polygon_segmentations_as_pycocotools_does(tmp_path: Path) -> None:
    gt, res = _coco_files(tmp_path)
    results = json.loads(res.read_text())
    for det in results:  # each detection's box as a (slightly rotated) polygon mask
        x, y, w, h = det["bbox"]
        det["segmentation"] = [[x, y, x + w, y + 1, x + w, y + h, x - 1, y + h]]
    res.write_text(json.dumps(results))
    code, out, err = _trainyard("coco-eval", str(gt), str(res), "--iou-type", "segm", "--json")
    assert code == 0, err
    ours = json.loads(out)
    # pycocotools takes polygon results through loadRes' bbox branch (areas from the boxes) and
    # rasterises them with the ground truth's image size; AP over all areas does not use the areas.
    for key, value in zip(["AP", "AP50", "AP75"], _pycocotools_stats(gt, res, "segm")[:3]):
        assert ours[key] == pytest.approx(value, abs=1e-9), key
    assert 0 < ours["AP"] < 1
def test_models_takes_the_registry_after_the_action_too(tmp_path: Path) -> None:
    reg = str(tmp_path / "registry")
    first = _register(tmp_path, "a", 0.1)
    assert _trainyard("models", "promote", first, "--registry", reg)[0] == 0
    code, out, _ = _trainyard("models", "list", "--registry", reg)
    assert code == 0 and out.splitlines()[1].startswith(f"* {first}")
    code, _, err = _trainyard("models", "show", "nope", "--registry", reg)
    assert code == 2 and "trainyard models list" in err and "list_models" not in err


def test_models_without_a_registry_here_says_where_to_look(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _trainyard("models", "list")
    assert code == 2 and err.count("\n") == 1 and "--registry DIR/registry" in err


def test_coco_eval_reports_recall_and_per_class_ap50(tmp_path: Path) -> None:
    gt, res = _coco_files(tmp_path)
    code, out, _ = _trainyard("coco-eval", str(gt), str(res), "--json")
    summary = json.loads(out)
    assert code == 0 and {"AR1", "AR10", "AR100", "ARs", "ARm", "ARl"} <= set(summary)
    assert 0 <= summary["AR100"] <= 1 and set(summary["per_class50"]) == {"plate", "7"}
    code, out, _ = _trainyard("coco-eval", str(gt), str(res))
    assert "AR100" in out and "AP50" in out


def _record_run(database: Path, run_id: str, status: str, promoted: int | None) -> None:
    from steps.db import Database

    db = Database(f"sqlite:///{database}")
    db.migrate()
    with db.transaction() as tx:
        tx.execute("INSERT INTO pipeline_runs (run_id, dataset_version, status, started_at, duration_seconds, model_id, "
                   "promoted) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (run_id, "datasets/v1", status, f"2026-01-0{run_id[-1]}T00:00:00Z", 240.0, f"m-{run_id}", promoted))


def test_runs_lists_pipeline_runs_newest_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAINYARD_DATABASE_URL", raising=False)
    _record_run(tmp_path / "trainyard.sqlite", "local-1", "Succeeded", 1)
    _record_run(tmp_path / "trainyard.sqlite", "local-2", "Failed", None)
    code, out, _ = _trainyard("runs", "--runs-dir", str(tmp_path))
    lines = out.splitlines()
    assert code == 0 and lines[1].startswith("local-2") and "Failed" in lines[1]
    assert lines[2].startswith("local-1") and "m-local-1 (promoted)" in lines[2] and "4.0" in lines[2]
    code, _, err = _trainyard("runs", "--runs-dir", str(tmp_path / "none"))
    assert code == 2 and "no local database" in err and "sqlite:///" not in err  # a path, never a URL


def test_prune_lists_then_removes_old_runs_and_unpromoted_models(tmp_path: Path) -> None:
    for name in ("local-20260101-000000", "local-20260102-000000", "local-20260103-000000"):
        (tmp_path / name / "train").mkdir(parents=True)
        (tmp_path / name / "train" / "model.pth").write_bytes(b"x" * 1000)
    kept_model, unpromoted = _register(tmp_path, "a", 0.1), _register(tmp_path, "b", 0.05)
    registry.promote(str(tmp_path / "registry"), kept_model, "test")

    code, out, _ = _trainyard("prune", "--runs-dir", str(tmp_path), "--keep", "1", "--models")
    assert code == 0 and out.count("would remove") == 3 and (tmp_path / "local-20260101-000000").is_dir()
    code, out, _ = _trainyard("prune", "--runs-dir", str(tmp_path), "--keep", "1", "--models", "--yes")
    assert code == 0 and sorted(p.name for p in tmp_path.glob("local-*")) == ["local-20260103-000000"]
    assert [m.model_id for m in registry.list_models(str(tmp_path / "registry"))] == [kept_model]
    assert unpromoted not in out or "removing" in out
