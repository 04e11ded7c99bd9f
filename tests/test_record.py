"""The record step against real git, DVC, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from steps import vcs
from steps.config import load_config
from steps.db import Database
from steps.errors import InputError
from steps.record.record import record

pytestmark = pytest.mark.integration


def _config(url: str):
    return load_config(None, [f"database.url={url}", "dataset.val_fraction=0.25", "dataset.test_fraction=0.25"])


def _count(url: str, sql: str) -> int:
    with Database(url).transaction() as tx:
        return tx.query(sql)[0][0]


def _check_recorded(repo: Path, url: str) -> None:
    result = record(_config(url), str(repo))
    assert result.version == "datasets/v1" and result.created
    assert sum(result.counts.values()) == 12
    assert "plate" in result.categories
    assert "datasets/v1" in vcs.remote_tags(str(repo), "datasets/*")
    assert _count(url, "SELECT COUNT(*) FROM training_datasets") == 1
    assert _count(url, "SELECT COUNT(*) FROM annotation_images") == 12
    assert _count(url, "SELECT COUNT(DISTINCT split) FROM dataset_images") == 3
    # The tagged commit holds the dataset's .dvc file, and its data is on the DVC remote.
    show = subprocess.run(["git", "-C", str(repo), "show", "datasets/v1:dataset.dvc"], capture_output=True, text=True)
    assert "md5:" in show.stdout
    # Recording again is a no-op returning the same version.
    again = record(_config(url), str(repo), "annotations/v1")
    assert again.version == result.version and not again.created and again.counts == result.counts
    assert _count(url, "SELECT COUNT(*) FROM training_datasets") == 1


def test_record_sqlite(sample_repo: Path, tmp_path: Path) -> None:
    _check_recorded(sample_repo, f"sqlite:///{tmp_path / 'meta.sqlite'}")


def test_record_postgres(sample_repo: Path, fresh_postgres: str) -> None:
    _check_recorded(sample_repo, fresh_postgres)


def test_recorded_dataset_round_trips_through_dvc(sample_repo: Path, tmp_path: Path) -> None:
    from steps.dataset_repo import checkout_dataset

    record(_config(f"sqlite:///{tmp_path / 'meta.sqlite'}"), str(sample_repo))
    with checkout_dataset(str(sample_repo), "datasets/v1", "dataset") as data:
        names = {split: {i["file_name"] for i in json.loads((data / f"{split}.json").read_text())["images"]}
                 for split in ("train", "val", "test")}
        assert not (names["train"] & names["val"]) and not (names["train"] & names["test"]) and not (names["val"] & names["test"])
        assert all((data / "images" / n).is_file() for split in names.values() for n in split)


def test_bad_labelme_file_fails_cleanly_and_records_nothing(sample_repo: Path, tmp_path: Path) -> None:
    from steps.dataset_repo import commit_annotations

    (sample_repo / "annotations" / "broken.json").write_text("{ not json")
    commit_annotations(sample_repo, "annotations", "annotations/v2")
    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    with pytest.raises(InputError, match=r"broken\.json.*JSON"):
        record(_config(url), str(sample_repo), "annotations/v2")
    assert "datasets/v2" not in vcs.remote_tags(str(sample_repo), "datasets/*")
    assert _count(url, "SELECT COUNT(*) FROM training_datasets") == 0


def test_unknown_annotation_version_names_the_tags(sample_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"annotations/v9.*annotations/v1"):
        record(_config(f"sqlite:///{tmp_path / 'm.sqlite'}"), str(sample_repo), "annotations/v9")
