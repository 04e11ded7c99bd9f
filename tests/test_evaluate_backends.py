"""A production model trained with the other backend is scored with its own backend.

Real torchvision and detectron2 Mask R-CNNs (tiny, untrained: the weights do not matter, the
loading does) on the tiny synthetic dataset; the detectron2 cases skip when it is not importable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steps import registry
from steps.config import Config, load_config, save_config
from steps.evaluate.evaluate import evaluate
from steps.models.checkpoints import checkpoint_path, save_checkpoint
from tests.tiny_coco import CATEGORIES, make_coco_dataset

pytestmark = [pytest.mark.integration, pytest.mark.detectron2]

MODEL = {"backbone": "resnet18", "pretrained": "none", "min_size": 96, "max_size": 128, "roi_batch_size_per_image": 32}


def _config(tmp_path: Path, backend: str) -> Config:
    config = load_config(None, [f"promotion.registry={tmp_path / 'registry'}",
                                f"model.backend={backend}", *(f"model.{k}={v}" for k, v in MODEL.items()),
                                "evaluate.score_threshold=0.3", "promotion.bootstrap_samples=10"])
    config.database.url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    return config


def _checkpoint(config: Config, path: Path) -> Path:
    """An untrained checkpoint as the backend's train step writes it (the fields `load` reads)."""
    if config.model.backend == "torchvision":
        from steps.models.torchvision_model import build_model

        model = build_model(config.model, len(CATEGORIES) + 1)
    else:
        from detectron2.modeling import build_model as build_d2

        from steps.models.detectron2_config import build_cfg

        model = build_d2(build_cfg(config, len(CATEGORIES), "cpu"))
    state = {"backend": config.model.backend, "iteration": 1, "model": model.state_dict(),
             "config": config.model_dump(mode="json"), "categories": CATEGORIES}
    return save_checkpoint(state, path)


def _make_production(config: Config, tmp_path: Path) -> str:
    folder = tmp_path / "champion"
    _checkpoint(config, folder / "model.pth")
    save_config(config, folder / "config.yaml")
    model = registry.register(config.promotion.registry, folder, "champion", {}, {"backend": config.model.backend})
    registry.promote(config.promotion.registry, model.model_id, "seeded by the test")
    return model.model_id


@pytest.mark.parametrize(("champion_backend", "run_backend"), [("detectron2", "torchvision"), ("torchvision", "detectron2")])
def test_the_champion_is_loaded_with_its_own_backend(champion_backend: str, run_backend: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("detectron2", reason="detectron2 is not importable (built from source; put it on PYTHONPATH)")
    monkeypatch.delenv("TRAINYARD_DATABASE_URL", raising=False)
    data = make_coco_dataset(tmp_path / "data", images=3)
    champion_id = _make_production(_config(tmp_path, champion_backend), tmp_path)
    config = _config(tmp_path, run_backend)
    _checkpoint(config, checkpoint_path(tmp_path / "run" / "checkpoints", 1))
    evaluate(config, data, tmp_path / "run", tmp_path / "evaluation", "r1", "datasets/v1")
    evaluation = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert evaluation["champion"]["model_id"] == champion_id
    assert evaluation["champion"]["backend"] == champion_backend
    assert "segm/AP" in evaluation["champion"]["metrics"]
    registered = registry.show(config.promotion.registry, evaluation["promotion"]["model_id"])
    assert registered.lineage["backend"] == run_backend
