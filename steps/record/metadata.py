"""Database rows of the record step: annotation images, training datasets, split membership."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from steps.db import Transaction


@dataclass(frozen=True)
class ImageRow:
    file_name: str
    width: int
    height: int
    sha256: str
    num_shapes: int
    labels: list[str]
    split: str


@dataclass(frozen=True)
class DatasetRow:
    version: str
    annotation_version: str
    git_commit: str
    dvc_md5: str
    counts: dict[str, int]
    categories: list[str]
    settings: dict
    # Labelme files left out (dataset.on_invalid=skip): (file relative to the annotations folder, reason).
    skipped: tuple[tuple[str, str], ...] = ()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def lock_version(tx: Transaction, version: str) -> None:
    """Serialize concurrent recorders of one version until the transaction ends.

    SQLite's BEGIN IMMEDIATE already holds the database's write lock; PostgreSQL needs an
    advisory lock so that the second recorder waits, then sees the first one's dataset.
    """
    if tx.dialect == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"trainyard-dataset:{version}",))


def find_dataset(tx: Transaction, version: str) -> dict | None:
    rows = tx.query(
        "SELECT version, annotation_version, git_commit, dvc_md5, num_train, num_val, num_test, categories, "
        "num_skipped FROM training_datasets WHERE version = ?",
        (version,),
    )
    if not rows:
        return None
    v, ann, commit, md5, n_train, n_val, n_test, categories, n_skipped = rows[0]
    return {
        "version": v,
        "annotation_version": ann,
        "git_commit": commit,
        "dvc_md5": md5,
        "counts": {"train": n_train, "val": n_val, "test": n_test},
        "categories": json.loads(categories),
        "skipped": n_skipped,
    }


def image_splits(tx: Transaction) -> dict[str, str]:
    """File name -> split of every image recorded so far, as the newest dataset holding it assigned it."""
    rows = tx.query(
        "SELECT a.file_name, d.split FROM dataset_images d JOIN annotation_images a ON a.id = d.image_id "
        "ORDER BY d.dataset_id"
    )
    return {file_name: split for file_name, split in rows}


def insert_dataset(tx: Transaction, dataset: DatasetRow, images: list[ImageRow]) -> int:
    """Insert the dataset, its annotation images (shared across datasets), split membership and
    the files left out."""
    stamp = now()
    dataset_id = tx.insert(
        "INSERT INTO training_datasets (version, annotation_version, git_commit, dvc_md5, num_train, num_val, "
        "num_test, categories, settings, created_at, num_skipped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            dataset.version,
            dataset.annotation_version,
            dataset.git_commit,
            dataset.dvc_md5,
            dataset.counts.get("train", 0),
            dataset.counts.get("val", 0),
            dataset.counts.get("test", 0),
            json.dumps(dataset.categories, ensure_ascii=False),
            json.dumps(dataset.settings, sort_keys=True, ensure_ascii=False),
            stamp,
            len(dataset.skipped),
        ),
    )
    for file, reason in dataset.skipped:
        tx.execute(
            "INSERT INTO skipped_annotations (dataset_id, file, reason) VALUES (?, ?, ?)", (dataset_id, file, reason)
        )
    for image in images:
        tx.execute(
            "INSERT INTO annotation_images (annotation_version, file_name, width, height, sha256, num_shapes, "
            "labels, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (annotation_version, file_name) DO NOTHING",
            (
                dataset.annotation_version,
                image.file_name,
                image.width,
                image.height,
                image.sha256,
                image.num_shapes,
                json.dumps(sorted(set(image.labels)), ensure_ascii=False),
                stamp,
            ),
        )
        tx.execute(
            "INSERT INTO dataset_images (dataset_id, image_id, split) "
            "SELECT ?, id, ? FROM annotation_images WHERE annotation_version = ? AND file_name = ?",
            (dataset_id, image.split, dataset.annotation_version, image.file_name),
        )
    return dataset_id
