"""Splits that hold across dataset versions: no image ever changes split once assigned."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from steps.config import load_config
from steps.datasets.split import assign_splits, split_images


def names(n: int) -> list[str]:
    return [f"img_{i:03d}.jpg" for i in range(n)]


def rarest(count: int) -> dict[str, str]:
    """Strata that shift as the set grows, as the rarest category of each image does."""
    return {name: ("rare" if i % (3 + count // 20) == 0 else "common") for i, name in enumerate(names(count))}


def test_growing_without_history_moves_images_but_with_it_none() -> None:
    first = split_images(names(40), 0.2, 0.1, seed=0, strata=rarest(40))
    regrown = split_images(names(60), 0.2, 0.1, seed=0, strata=rarest(60))
    assert any(regrown[n] != first[n] for n in first)  # the problem: strata shift, images move
    grown = assign_splits(names(60), first, 0.2, 0.1, seed=0, strata=rarest(60))
    assert {n: grown[n] for n in first} == first
    counts = Counter(grown.values())
    assert counts == {"train": 42, "val": 12, "test": 6}  # the new images top up to the shares of 60


def test_new_images_are_assigned_deterministically_whatever_the_order() -> None:
    first = split_images(names(40), 0.2, 0.1, seed=0)
    grown = assign_splits(names(55), first, 0.2, 0.1, seed=0)
    assert assign_splits(list(reversed(names(55))), first, 0.2, 0.1, seed=0) == grown
    assert {n: grown[n] for n in first} == first


def test_removed_images_are_forgotten_and_a_shrunk_val_is_not_refilled_from_train() -> None:
    previous = {"a": "val", "b": "val", "c": "train", "gone": "test"}
    split = assign_splits(["a", "b", "c", "d"], previous, 0.25, 0.0, seed=0)
    assert split["a"] == split["b"] == "val" and split["c"] == "train"
    assert split["d"] == "train"  # val already holds more than its share
    assert "gone" not in split


def test_without_history_it_is_the_stratified_split() -> None:
    assert assign_splits(names(30), {}, 0.2, 0.1, 4, rarest(30)) == split_images(names(30), 0.2, 0.1, 4, rarest(30))


@pytest.mark.integration
def test_a_version_that_adds_images_moves_no_earlier_image(sample_repo: Path, tmp_path: Path) -> None:
    from steps.datasets.repo import commit_annotations
    from steps.db import Database
    from steps.record.record import record
    from steps.datasets.sample_data import generate_sample

    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    config = load_config(None, ["dataset.val_fraction=0.25", "dataset.test_fraction=0.25"])
    config.database.url = url
    record(config, str(sample_repo), "annotations/v1")
    generate_sample(sample_repo / "annotations", num_images=24, seed=3)  # the same 12 first ones, 12 more
    commit_annotations(sample_repo, "annotations", "annotations/v2")
    second = record(config, str(sample_repo), "annotations/v2")
    assert second.created and sum(second.counts.values()) == 24

    with Database(url).transaction() as tx:
        rows = tx.query("SELECT t.version, a.file_name, d.split FROM dataset_images d "
                        "JOIN annotation_images a ON a.id = d.image_id JOIN training_datasets t ON t.id = d.dataset_id")
    v1 = {name: split for version, name, split in rows if version == "datasets/v1"}
    v2 = {name: split for version, name, split in rows if version == "datasets/v2"}
    assert len(v1) == 12 and {name: v2[name] for name in v1} == v1
    assert Counter(v2.values()) == {"train": 12, "val": 6, "test": 6}
