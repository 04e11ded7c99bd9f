"""steps.registry: register, promote, roll back and fetch, on a local folder and a GCS emulator."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from steps import registry, storage
from steps.errors import ExternalError, InputError
from tests.gcs_emulator import gcs_emulator  # noqa: F401

LINEAGE = {"dataset_version": "dataset/v3", "annotation_version": "annotations/v7", "dataset_commit": "abc123"}


@pytest.fixture(params=["local", pytest.param("gcs", marks=pytest.mark.integration)])
def reg(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty registry on each backend."""
    if request.param == "local":
        return str(tmp_path / "registry")
    bucket = request.getfixturevalue("gcs_emulator").make_bucket(f"r-{uuid.uuid4().hex[:12]}")
    return storage.join(bucket, "registry")


def _model_dir(tmp_path: Path, weights: bytes) -> Path:
    folder = tmp_path / f"model-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "model.pth").write_bytes(weights)
    (folder / "config.yaml").write_text("model: {backbone: resnet18}\n")
    (folder / "labels.txt").write_text("plate\n")
    return folder


def _register(reg: str, tmp_path: Path, weights: bytes, ap: float) -> str:
    return registry.register(reg, _model_dir(tmp_path, weights), "plates", {"segm/AP": ap}, LINEAGE).model_id


def test_register_list_show_fetch(reg: str, tmp_path: Path) -> None:
    lineage = {**LINEAGE, "run_id": "r1"}
    first = registry.register(reg, _model_dir(tmp_path, b"w1"), "plates", {"segm/AP": 41.5}, lineage)
    second = _register(reg, tmp_path, b"w2", 43.0)

    assert [m.model_id for m in registry.list_models(reg)] == sorted([first.model_id, second])
    shown = registry.show(reg, first.model_id)
    assert shown == first
    assert shown.metrics == {"segm/AP": 41.5}
    assert shown.lineage["dataset_commit"] == "abc123" and shown.lineage["run_id"] == "r1"
    assert shown.lineage["image_tags"] is None  # every lineage key is present, None when unknown
    assert shown.lineage["weights_sha256"] == hashlib.sha256(b"w1").hexdigest()

    got = registry.fetch_model(reg, first.model_id, tmp_path / "fetched")
    assert (got / "model.pth").read_bytes() == b"w1"
    expected = ["config.yaml", "labels.txt", "lineage.json", "metrics.json", "model.pth"]
    assert sorted(p.name for p in got.iterdir()) == expected
    assert json.loads((got / "metrics.json").read_text()) == {"segm/AP": 41.5}


def test_model_ids_sort_by_time_and_are_unique(tmp_path: Path) -> None:
    reg = str(tmp_path / "registry")
    ids = [_register(reg, tmp_path, b"w", 1.0) for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(len(i.split("-")[0]) == len("20261123T231500123Z") and i.split("-")[0].endswith("Z") for i in ids)
    assert [m.model_id for m in registry.list_models(reg)] == ids  # oldest first, even within a second


def test_register_needs_weights_and_config(tmp_path: Path) -> None:
    folder = tmp_path / "incomplete"
    folder.mkdir()
    (folder / "config.yaml").write_text("{}")
    with pytest.raises(InputError, match="missing model.pth"):
        registry.register(str(tmp_path / "registry"), folder, "plates", {}, {})


def test_unknown_or_interrupted_registration_is_not_listed(tmp_path: Path) -> None:
    reg = str(tmp_path / "registry")
    half = tmp_path / "registry" / "models" / "20260101T000000Z-deadbeef"
    half.mkdir(parents=True)
    (half / "model.pth").write_bytes(b"partial")  # copied, but lineage.json never written
    assert registry.list_models(reg) == []
    with pytest.raises(InputError, match="no model '20260101T000000Z-deadbeef'"):
        registry.promote(reg, "20260101T000000Z-deadbeef", "test")


def test_promote_then_rollback(reg: str, tmp_path: Path) -> None:
    m1 = _register(reg, tmp_path, b"w1", 40.0)
    m2 = _register(reg, tmp_path, b"w2", 45.0)
    assert registry.production(reg) is None

    registry.promote(reg, m1, "first model", expected_champion="")
    registry.promote(reg, m2, "beats champion", expected_champion=m1)
    pointer = registry.production(reg)
    assert pointer["model_id"] == m2 and pointer["previous"]["model_id"] == m1
    assert pointer["metrics"] == {"segm/AP": 45.0} and pointer["uri"] == storage.join(reg, "models", m2)
    assert (registry.fetch_model(reg, "production", tmp_path / "prod") / "model.pth").read_bytes() == b"w2"

    assert registry.rollback(reg)["model_id"] == m1
    assert registry.production(reg)["model_id"] == m1
    assert registry.production(reg)["previous"] is None
    with pytest.raises(InputError, match="no previous production model"):
        registry.rollback(reg)


def test_promoting_production_again_is_a_no_op(tmp_path: Path) -> None:
    reg = str(tmp_path / "registry")
    m1 = _register(reg, tmp_path, b"w1", 40.0)
    first = registry.promote(reg, m1, "first", expected_champion="")
    assert registry.promote(reg, m1, "retried step", expected_champion="") == first  # an Argo retry is harmless
    assert registry.production(reg) == first


def test_fetch_production_before_any_promotion_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no production model yet"):
        registry.fetch_model(str(tmp_path / "registry"), "production", tmp_path / "out")


def test_interrupted_promotion_keeps_the_old_pointer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = str(tmp_path / "registry")
    m1 = _register(reg, tmp_path, b"w1", 40.0)
    m2 = _register(reg, tmp_path, b"w2", 45.0)
    registry.promote(reg, m1, "first")

    def crash(*_args: object) -> None:
        raise OSError(5, "Input/output error")  # the process dies between writing and renaming

    monkeypatch.setattr(storage.os, "replace", crash)
    with pytest.raises(ExternalError, match="production.json"):
        registry.promote(reg, m2, "better")
    monkeypatch.undo()

    pointer = json.loads((tmp_path / "registry" / "production.json").read_text())
    assert pointer["model_id"] == m1
    assert sorted(p.name for p in (tmp_path / "registry").iterdir()) == ["models", "production.json"]


def test_stale_champion_is_refused(reg: str, tmp_path: Path) -> None:
    m1, m2, m3 = (_register(reg, tmp_path, w, ap) for w, ap in [(b"w1", 40.0), (b"w2", 45.0), (b"w3", 44.0)])
    registry.promote(reg, m1, "first")
    # Two evaluations both compared against m1; the first to promote wins, the second must not
    # silently replace it (m3 never beat m2).
    registry.promote(reg, m2, "beats m1", expected_champion=m1)
    with pytest.raises(storage.ConcurrentUpdateError, match=f"production is now {m2}"):
        registry.promote(reg, m3, "beats m1", expected_champion=m1)
    assert registry.production(reg)["model_id"] == m2
