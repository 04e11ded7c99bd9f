"""The record step against real git, DVC, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from steps import vcs
from steps.config import load_config
from steps.dataset_repo import checkout_dataset, commit_annotations
from steps.db import Database
from steps.errors import ExternalError, InputError
from steps.record.metadata import DatasetRow, ImageRow, find_dataset, insert_dataset
from steps.record.record import record

pytestmark = pytest.mark.integration


def _config(url: str, *overrides: str):
    return load_config(None, [f"database.url={url}", "dataset.val_fraction=0.25", "dataset.test_fraction=0.25",
                              *overrides])


def _rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with Database(url).transaction() as tx:
        return tx.query(sql, params)


def _count(url: str, sql: str) -> int:
    return _rows(url, sql)[0][0]


def test_record_sqlite_round_trip_and_rerecord(sample_repo: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    result = record(_config(url), str(sample_repo))
    assert result.version == "datasets/v1" and result.created and result.skipped == 0
    assert result.counts == {"train": 6, "val": 3, "test": 3}
    assert "plate" in result.categories
    assert "datasets/v1" in vcs.remote_tags(str(sample_repo), "datasets/*")
    assert _count(url, "SELECT COUNT(*) FROM training_datasets") == 1
    assert _count(url, "SELECT COUNT(*) FROM annotation_images") == 12
    assert _rows(url, "SELECT split, COUNT(*) FROM dataset_images GROUP BY split ORDER BY split") == [
        ("test", 3), ("train", 6), ("val", 3)]
    # The tag is on a commit holding the dataset's .dvc file, which is the one in the database.
    (commit, md5), = _rows(url, "SELECT git_commit, dvc_md5 FROM training_datasets")
    assert vcs.git(sample_repo, "rev-parse", "datasets/v1^{commit}").strip() == commit
    assert f"md5: {md5}" in vcs.git(sample_repo, "show", "datasets/v1:dataset.dvc")

    # A fresh checkout pulls the data back from the DVC remote: disjoint splits, every image there.
    with checkout_dataset(str(sample_repo), "datasets/v1", "dataset") as data:
        names = {split: {i["file_name"] for i in json.loads((data / f"{split}.json").read_text())["images"]}
                 for split in ("train", "val", "test")}
        assert sum(map(len, names.values())) == 12 and len(set().union(*names.values())) == 12
        assert all((data / "images" / n).is_file() for split in names.values() for n in split)
        assert json.loads((data / "report.json").read_text())["images"] == 12

    # Recording again is a no-op returning the same version.
    again = record(_config(url), str(sample_repo), "annotations/v1")
    assert again.version == result.version and not again.created and again.counts == result.counts
    assert _count(url, "SELECT COUNT(*) FROM training_datasets") == 1


def test_bad_files_fail_cleanly_then_skip_records_the_rest(sample_repo: Path, tmp_path: Path) -> None:
    annotations = sample_repo / "annotations"
    (annotations / "broken.json").write_text("{ not json")
    doc = json.loads((annotations / "plate_0000.json").read_text())
    doc["imageWidth"] += 1  # no longer the image's size
    (annotations / "plate_0000.json").write_text(json.dumps(doc))
    # A labelme labels file in the annotations fixes the category order.
    labels = ["plate", *sorted({s["label"] for p in annotations.glob("plate_*.json")
                                for s in json.loads(p.read_text())["shapes"]} - {"plate"}, reverse=True)]
    (annotations / "labels.txt").write_text("\n".join(["__ignore__", "_background_", *labels]) + "\n")
    commit_annotations(sample_repo, "annotations", "annotations/v2")
    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"

    # The step as the workflow runs it: one error naming every bad file, no traceback, nothing recorded.
    done = subprocess.run(
        [sys.executable, "-m", "steps.record", "--repo", str(sample_repo), "--annotation-version", "annotations/v2",
         "--set", f"database.url={url}"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"error: {sample_repo}@annotations/v2: 2 of 13 labelme files are invalid")
    assert "  broken.json: not valid JSON" in done.stderr
    assert "  plate_0000.json: imageWidth x imageHeight is 321x240" in done.stderr
    assert "dataset.on_invalid=skip" in done.stderr and "Traceback" not in done.stderr
    assert "datasets/v2" not in vcs.remote_tags(str(sample_repo), "datasets/*")
    assert _count(url, "SELECT COUNT(*) FROM training_datasets") == 0

    result = record(_config(url, "dataset.on_invalid=skip"), str(sample_repo), "annotations/v2")
    assert result.created and result.skipped == 2 and sum(result.counts.values()) == 11
    assert result.categories == labels
    skipped = _rows(url, "SELECT file, reason FROM skipped_annotations ORDER BY file")
    assert [file for file, _ in skipped] == ["broken.json", "plate_0000.json"]
    assert skipped[0][1].startswith("not valid JSON at line 1")
    (settings,) = _rows(url, "SELECT settings FROM training_datasets")[0]
    assert json.loads(settings)["labels_source"] == "annotations/labels.txt"
    with checkout_dataset(str(sample_repo), "datasets/v2", "dataset") as data:
        report = json.loads((data / "report.json").read_text())
        assert report["skipped"] == [{"file": file, "reason": reason} for file, reason in skipped]
        assert [c["name"] for c in json.loads((data / "train.json").read_text())["categories"]] == labels


def test_a_failed_tag_push_leaves_no_rows_and_no_tag(sample_repo: Path, tmp_path: Path) -> None:
    hook = sample_repo / ".git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'error: tags are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    with pytest.raises(ExternalError, match="git push tag datasets/v1 failed"):
        record(_config(url), str(sample_repo))
    assert vcs.remote_tags(str(sample_repo), "datasets/*") == []
    assert _count(url, "SELECT COUNT(*) FROM training_datasets") == 0
    assert _count(url, "SELECT COUNT(*) FROM annotation_images") == 0
    hook.unlink()  # once the remote accepts it, the same version records normally
    assert record(_config(url), str(sample_repo)).created


def test_unknown_annotation_version_names_the_tags(sample_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"annotations/v9.*annotations/v1"):
        record(_config(f"sqlite:///{tmp_path / 'm.sqlite'}"), str(sample_repo), "annotations/v9")


WEIRD_NAME = """O'Brien "plate"; DROP TABLE training_datasets; --.jpg"""
WEIRD_LABEL = """'); DELETE FROM annotation_images; -- 번호판 % ?"""


@pytest.fixture(params=["sqlite", "postgres"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.sqlite'}"
    return request.getfixturevalue("fresh_postgres")


def test_names_with_quotes_and_sql_are_stored_verbatim(any_database: str) -> None:
    db = Database(any_database)
    db.migrate()
    row = DatasetRow("datasets/it's", "annotations/it's", "c0ffee", "abc.dir", {"train": 1, "val": 0, "test": 0},
                     [WEIRD_LABEL], {"labels": [WEIRD_LABEL]}, skipped=((f"sub/{WEIRD_NAME}.json", f"label {WEIRD_LABEL!r}"),))
    image = ImageRow(WEIRD_NAME, 40, 30, "0" * 64, 2, [WEIRD_LABEL, WEIRD_LABEL], "train")
    with db.transaction() as tx:
        insert_dataset(tx, row, [image])
    with db.transaction() as tx:
        found = find_dataset(tx, "datasets/it's")
        stored = tx.query("SELECT file_name, labels FROM annotation_images WHERE file_name = ?", (WEIRD_NAME,))
        skipped = tx.query("SELECT file, reason FROM skipped_annotations")
    assert found is not None and found["categories"] == [WEIRD_LABEL] and found["skipped"] == 1
    assert stored == [(WEIRD_NAME, json.dumps([WEIRD_LABEL], ensure_ascii=False))]
    assert skipped == [(f"sub/{WEIRD_NAME}.json", f"label {WEIRD_LABEL!r}")]
