"""`trainyard labelme2coco`: the conversion alone, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from workflows.cli import main

SQUARE = [[0, 0], [4, 0], [4, 4], [0, 4]]


def _pair(folder: Path, name: str, labels: list[str], image: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if image:
        Image.new("RGB", (40, 30), (90, 90, 90)).save(folder / f"{name}.jpg")
    shapes = [{"label": label, "points": [[x + 5 * i, y] for x, y in SQUARE], "shape_type": "polygon",
               "group_id": None, "flags": {}} for i, label in enumerate(labels)]
    doc = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": f"{name}.jpg", "imageData": None,
           "imageHeight": 30, "imageWidth": 40}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def annotated(tmp_path: Path) -> Path:
    """10 labelled images in two folders and a labelme labels file."""
    folder = tmp_path / "annotated"
    for i in range(6):
        _pair(folder / "batch1", f"car_{i}", ["car"])
    for i in range(4):
        _pair(folder / "batch2", f"bus_{i}", ["bus", "car"])
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\nbus\ncar\nbike\n")
    return folder


def _coco(folder: Path, split: str) -> dict:
    return json.loads((folder / f"{split}.json").read_text())


def test_converts_with_labelme_labels_file_semantics(annotated: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "coco"
    code = main(["labelme2coco", str(annotated), str(out), "--labels", str(tmp_path / "labels.txt"),
                 "--val-fraction", "0.2", "--seed", "3"])
    assert code == 0
    assert "10 images, 14 annotations, 3 categories" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["images", "report.json", "train.json", "val.json"]
    train, val = _coco(out, "train"), _coco(out, "val")
    # Labels file order, ids from 1; __ignore__ skipped, _background_ not a category; unused labels kept.
    assert train["categories"] == [{"id": 1, "name": "bus", "supercategory": ""},
                                   {"id": 2, "name": "car", "supercategory": ""},
                                   {"id": 3, "name": "bike", "supercategory": ""}]
    assert len(train["images"]) == 8 and len(val["images"]) == 2
    # Stratified: one image of each kind in val (rarest category: bus for bus_*, car for car_*).
    assert sorted(image["file_name"][:3] for image in val["images"]) == ["bus", "car"]
    names = [image["file_name"] for image in train["images"] + val["images"]]
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(names)
    assert all((out / "images" / name).is_file() for name in names)


def test_same_seed_same_split_other_seed_other_split(annotated: Path, tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert main(["labelme2coco", str(annotated), str(tmp_path / name), "--val-fraction", "0.3", "--seed", seed]) == 0
        runs[name] = (tmp_path / name / "val.json").read_bytes()
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


def test_without_val_fraction_only_train_is_written(annotated: Path, tmp_path: Path) -> None:
    assert main(["labelme2coco", str(annotated), str(tmp_path / "out")]) == 0
    assert not (tmp_path / "out" / "val.json").exists()
    train = _coco(tmp_path / "out", "train")
    assert [c["name"] for c in train["categories"]] == ["bus", "car"]  # no labels file: found labels, sorted
    assert len(train["images"]) == 10


def test_fail_writes_nothing_and_names_every_bad_file(annotated: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    _pair(annotated / "batch2", "lost", ["car"], image=False)
    (annotated / "broken.json").write_text("{ not json")
    out = tmp_path / "coco"
    code = main(["labelme2coco", str(annotated), str(out), "--labels", str(tmp_path / "labels.txt")])
    err = capsys.readouterr().err
    assert code == 2
    assert not out.exists() and not list(tmp_path.glob(".coco*"))  # nothing at all, not even a staging folder
    assert err.startswith("error: 2 of 12 labelme files are invalid (nothing was written):")
    assert "  batch2/lost.json: image 'lost.jpg' not found" in err
    assert "  broken.json: not valid JSON at line 1, column 3" in err
    assert "--on-invalid skip" in err and "Traceback" not in err


def test_skip_writes_the_rest_and_a_report(annotated: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _pair(annotated / "batch2", "zebra", ["zebra"])
    out = tmp_path / "coco"
    code = main(["labelme2coco", str(annotated), str(out), "--labels", str(tmp_path / "labels.txt"),
                 "--on-invalid", "skip"])
    captured = capsys.readouterr()
    assert code == 0
    assert "skipped 1 invalid file(s)" in captured.err and "batch2/zebra.json" in captured.err
    report = json.loads((out / "report.json").read_text())
    assert report["skipped"] == [{
        "file": "batch2/zebra.json",
        "reason": f"shape 0 has label 'zebra', which is not in {tmp_path / 'labels.txt'} (bus, car, bike); "
                  "add it there or fix the label",
    }]
    assert report["images"] == 10 and "zebra.jpg" not in {i["file_name"] for i in _coco(out, "train")["images"]}


def test_refuses_unsafe_output_folders(annotated: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["labelme2coco", str(annotated), str(annotated / "coco")]) == 2
    assert "must not contain, or lie inside, the input folder" in capsys.readouterr().err
    assert main(["labelme2coco", str(annotated / "batch1"), str(annotated)]) == 2  # would replace its own input
    capsys.readouterr()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main(["labelme2coco", str(annotated), str(tmp_path / "full")]) == 2
    assert "not empty; choose another or pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "full" / "keep.txt").exists()
    assert main(["labelme2coco", str(annotated), str(tmp_path / "full"), "--overwrite"]) == 0
    assert not (tmp_path / "full" / "keep.txt").exists() and (tmp_path / "full" / "train.json").is_file()


def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["labelme2coco", str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    assert "no labelme .json files found" in capsys.readouterr().err
    assert main(["labelme2coco", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    assert "nope: no such folder" in capsys.readouterr().err
    assert main(["labelme2coco", str(tmp_path / "empty"), str(tmp_path / "out"), "--val-fraction", "1"]) == 2
    assert "--val-fraction 1.0: must be >= 0 and < 1" in capsys.readouterr().err
    assert main(["labelme2coco", str(tmp_path / "empty"), str(tmp_path / "out"), "--labels", str(tmp_path / "x.txt")]) == 2
    assert "x.txt: labels file not found" in capsys.readouterr().err


def test_worker_count_changes_no_byte_of_the_output(annotated: Path, tmp_path: Path) -> None:
    # Files are converted in worker processes and collected in path order: every file written is
    # the same with one worker as with several, and so is a second run.
    outputs = []
    for run, workers in enumerate(["1", "3", "3"]):
        out = tmp_path / f"coco-{run}"
        assert main(["labelme2coco", str(annotated), str(out), "--labels", str(tmp_path / "labels.txt"),
                     "--val-fraction", "0.3", "--workers", workers]) == 0
        outputs.append({path.relative_to(out): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()})
    assert outputs[0] == outputs[1] == outputs[2] and len(outputs[0]) == 13  # 10 images, train, val, report
