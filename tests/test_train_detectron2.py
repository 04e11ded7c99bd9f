"""The detectron2 Mask R-CNN backend: training outputs, resume, preemption, fallback, prediction.

detectron2 is built from source, never installed from a package registry: these tests run when
it is importable (e.g. `PYTHONPATH=/path/to/detectron2-src`) and skip otherwise. Its pure-Python
code is enough here; the C++ extension is not needed for Mask R-CNN on a CPU.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.detectron2]
pytest.importorskip(
    "detectron2", reason="detectron2 is not installed (built from source; see images/train); put its source on PYTHONPATH to run these"
)

from steps.config import Config, load_config  # noqa: E402
from steps.errors import ConfigError  # noqa: E402
from steps.masks import decode  # noqa: E402
from steps.models import TrainSummary, get_backend  # noqa: E402
from steps.models.checkpoints import CheckpointWarning, read_checkpoint  # noqa: E402
from tests.tiny_coco import (  # noqa: E402
    CATEGORIES,
    IMAGE_H,
    IMAGE_W,
    checkpoint_iterations,
    make_coco_dataset,
    metric_iterations,
    train_and_sigterm,
)

# resnet18 with few sampled RoIs at ~128 px: an iteration takes well under a second on 2 CPU cores.
TINY_MODEL: dict[str, Any] = {"backend": "detectron2", "backbone": "resnet18", "pretrained": "none", "min_size": 128,
                              "max_size": 160, "roi_batch_size_per_image": 32}


def tiny_config(model: dict[str, Any] | None = None, **train: Any) -> Config:
    settings = {
        "iterations": 4, "batch_size": 2, "checkpoint_period": 2, "log_period": 1, "warmup_iters": 2, "lr": 0.005,
        "num_workers": 0, "device": "cpu", "hflip": 0.5, **train,
    }
    return Config.model_validate({"model": {**TINY_MODEL, **(model or {})}, "train": settings})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_coco_dataset(tmp_path_factory.mktemp("coco") / "dataset")


@pytest.fixture(scope="module")
def first_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainSummary]:
    """4 iterations, checkpoints at 2 and 4: shared read-only; tests that change it copy it."""
    out = tmp_path_factory.mktemp("run") / "out"
    return out, get_backend("detectron2").train(dataset, out, tiny_config())


@pytest.fixture
def run_copy(first_run: tuple[Path, TrainSummary], tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(first_run[0], out)
    return out


def test_short_run_writes_checkpoints_metrics_tensorboard_and_config(first_run: tuple[Path, TrainSummary]) -> None:
    out, summary = first_run
    assert summary.backend == "detectron2" and summary.iterations == 4 and summary.start_iteration == 0
    assert summary.final_loss is not None and np.isfinite(summary.final_loss)
    assert [p.name for p in summary.checkpoints] == ["model_0000002.pth", "model_0000004.pth"]
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")], "temp files left behind"

    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["iteration"] for m in metrics] == [1, 2, 3, 4]
    assert {"loss", "lr", "seconds", "loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc"} <= set(metrics[0])
    assert metrics[-1]["loss"] == pytest.approx(sum(v for k, v in metrics[-1].items() if k.startswith("loss_")))
    # Linear warmup from 0.001 x lr over the first 2 of 4 iterations (detectron2's WarmupCosineLR).
    assert metrics[0]["lr"] == pytest.approx(0.005 * 0.001)
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert load_config(out / "config.yaml") == tiny_config()
    d2 = (out / "detectron2.yaml").read_text()
    assert "DEPTH: 18" in d2 and "NUM_CLASSES: 2" in d2

    state = read_checkpoint(out / "checkpoints" / "model_0000004.pth")
    assert state["iteration"] == 4 and state["backend"] == "detectron2"
    assert state["categories"] == CATEGORIES
    assert state["config"]["model"]["backbone"] == "resnet18"
    assert state["scheduler"]["last_epoch"] == 4
    assert {"model", "optimizer", "scheduler", "rng", "scaler"} <= set(state)


def test_resume_continues_to_the_new_total(run_copy: Path, dataset: Path) -> None:
    summary = get_backend("detectron2").train(dataset, run_copy, tiny_config(iterations=6))
    assert summary.start_iteration == 4 and summary.iterations == 6
    assert metric_iterations(run_copy) == [1, 2, 3, 4, 5, 6]
    assert checkpoint_iterations(run_copy) == [2, 4, 6]
    state = read_checkpoint(run_copy / "checkpoints" / "model_0000006.pth")
    assert state["iteration"] == 6 and state["scheduler"]["last_epoch"] == 6


def test_rerun_of_a_finished_run_does_nothing(run_copy: Path, dataset: Path) -> None:
    before = (run_copy / "checkpoints" / "model_0000004.pth").stat().st_mtime_ns
    summary = get_backend("detectron2").train(dataset, run_copy, tiny_config())
    assert summary.start_iteration == 4 and summary.final_loss is None
    assert (run_copy / "checkpoints" / "model_0000004.pth").stat().st_mtime_ns == before


def test_corrupted_latest_checkpoint_falls_back_to_the_previous_one(run_copy: Path, dataset: Path) -> None:
    latest = run_copy / "checkpoints" / "model_0000004.pth"
    with open(latest, "r+b") as handle:
        handle.truncate(latest.stat().st_size // 2)
    with pytest.warns(CheckpointWarning, match="model_0000004.pth"):
        summary = get_backend("detectron2").train(dataset, run_copy, tiny_config())
    assert summary.start_iteration == 2 and summary.iterations == 4
    assert metric_iterations(run_copy) == [1, 2, 3, 4]
    assert read_checkpoint(latest)["iteration"] == 4  # rewritten, readable again
    assert (run_copy / "checkpoints" / "model_0000004.pth.corrupt").is_file()


def test_sigterm_checkpoints_exits_143_and_the_rerun_resumes(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # Checkpoints only at the end: any earlier checkpoint must be the one SIGTERM wrote.
    config = tiny_config(iterations=4, checkpoint_period=100, batch_size=1)
    code, output, stopped = train_and_sigterm(config, dataset, out, after_line="iter 1/4")
    assert code == 143, output
    assert 1 <= stopped < 4
    assert checkpoint_iterations(out) == [stopped]

    summary = get_backend("detectron2").train(dataset, out, config)
    assert summary.start_iteration == stopped and summary.iterations == 4
    assert metric_iterations(out) == [1, 2, 3, 4]
    assert checkpoint_iterations(out) == [stopped, 4]


def test_two_processes_train_one_run_under_detectron2_launch(dataset: Path, tmp_path: Path) -> None:
    """The multi-GPU code path (launch, DDP, sharded samples, rank 0 outputs); without CUDA, launch
    runs the processes on the CPU over gloo."""
    from detectron2.engine import launch

    from steps.models import detectron2_backend

    out = tmp_path / "out"
    launch(detectron2_backend._train, 2, dist_url="auto", args=(dataset, out, tiny_config(batch_size=2)))
    assert metric_iterations(out) == [1, 2, 3, 4]
    assert checkpoint_iterations(out) == [2, 4]
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1  # one writer: rank 0
    state = read_checkpoint(out / "checkpoints" / "model_0000004.pth")
    assert state["iteration"] == 4 and not any(key.startswith("module.") for key in state["model"])


def test_predict_returns_coco_results_with_image_sized_masks(first_run: tuple[Path, TrainSummary], dataset: Path) -> None:
    predictor = get_backend("detectron2").load(first_run[1].checkpoints[-1], device="cpu")
    assert predictor.categories == CATEGORIES
    results = predictor.predict(dataset / "images" / "img0.png", image_id=7, score_threshold=0.0)
    assert results, "an untrained model still proposes boxes at threshold 0"
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    for result in results:
        assert set(result) == {"image_id", "category_id", "bbox", "score", "segmentation"}
        assert result["image_id"] == 7 and result["category_id"] in (1, 2)
        x, y, w, h = result["bbox"]
        assert 0 <= x and 0 <= y and w >= 0 and h >= 0 and x + w <= IMAGE_W + 1e-3 and y + h <= IMAGE_H + 1e-3
        assert 0.0 <= result["score"] <= 1.0
        assert isinstance(result["segmentation"]["counts"], str)
        assert decode(result["segmentation"]).shape == (IMAGE_H, IMAGE_W)
    json.dumps(results)  # COCO results must serialise as they are
    cutoff = results[len(results) // 2]["score"]
    assert all(r["score"] >= cutoff for r in predictor.predict(dataset / "images" / "img0.png", 7, cutoff))


def test_torchvision_cannot_load_a_detectron2_checkpoint(first_run: tuple[Path, TrainSummary]) -> None:
    from steps.errors import InputError

    with pytest.raises(InputError, match="written by backend 'detectron2'"):
        get_backend("torchvision").load(first_run[1].checkpoints[-1], device="cpu")


def test_a_checkpoint_file_can_start_a_model_with_other_categories(first_run: tuple[Path, TrainSummary], tmp_path: Path) -> None:
    from detectron2.modeling import build_model

    from steps.models.detectron2_backend import load_initial_weights
    from steps.models.detectron2_config import build_cfg

    weights = first_run[1].checkpoints[-1]
    config = tiny_config(model={"pretrained": str(weights)})
    model = build_model(build_cfg(config, num_classes=5, device="cpu"))
    load_initial_weights(model, str(weights), str(weights))
    trained = read_checkpoint(weights)["model"]
    key = "backbone.bottom_up.res5.1.conv2.weight"
    assert torch.equal(model.state_dict()[key], trained[key])
    # the 5-class box predictor cannot take the 2-class weights: it stays at its random start
    assert model.state_dict()["roi_heads.box_predictor.cls_score.weight"].shape[0] == 6
    not_weights = tmp_path / "notes.pth"
    not_weights.write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read .*notes.pth as weights"):
        load_initial_weights(model, str(not_weights), str(not_weights))


def test_config_maps_schedule_resize_range_and_backbone() -> None:
    from steps.models.detectron2_config import build_cfg

    config = tiny_config(
        model={"backbone": "resnet50", "min_size_train": [96, 112, 128]}, lr_schedule="step", lr_steps=[0.5, 0.75], iterations=100
    )
    cfg = build_cfg(config, num_classes=2, device="cpu")
    assert cfg.MODEL.RESNETS.DEPTH == 50 and cfg.MODEL.RESNETS.RES2_OUT_CHANNELS == 256
    assert cfg.MODEL.RESNETS.NORM == "BN" and cfg.MODEL.BACKBONE.FREEZE_AT == 0  # from scratch: train every layer
    assert tuple(cfg.INPUT.MIN_SIZE_TRAIN) == (96, 112, 128) and cfg.INPUT.MIN_SIZE_TEST == 128
    assert cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupMultiStepLR" and tuple(cfg.SOLVER.STEPS) == (50, 75)
    assert cfg.SOLVER.AMP.ENABLED is False  # AMP is CUDA only
    assert cfg.MODEL.WEIGHTS == ""
    # The mask head's width and RoIAlign's sampling: detectron2's own (the FPN's width, 0) unless set.
    assert cfg.MODEL.ROI_MASK_HEAD.CONV_DIM == 256 and cfg.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO == 0
    narrow = build_cfg(tiny_config(model={"fpn_channels": 128, "mask_head_channels": 64, "roi_sampling_ratio": 1}),
                       num_classes=2, device="cpu")
    assert narrow.MODEL.ROI_MASK_HEAD.CONV_DIM == 64 and narrow.MODEL.ROI_BOX_HEAD.FC_DIM == 512
    assert narrow.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO == 1 == narrow.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO
    coco = build_cfg(tiny_config(model={"backbone": "resnet50", "pretrained": "coco"}), num_classes=2, device="cpu")
    assert coco.MODEL.WEIGHTS.startswith("detectron2://COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/")
    assert coco.MODEL.RESNETS.NORM == "FrozenBN" and coco.MODEL.BACKBONE.FREEZE_AT == 2


@pytest.mark.parametrize(
    ("model", "train", "message"),
    [
        ({"backbone": "mobilenet_v3_large"}, {}, "not a detectron2 backbone"),
        ({"backbone": "resnet18", "pretrained": "imagenet"}, {}, "imagenet weights for resnet50, resnet101 only"),
        ({"pretrained": "/no/such/weights.pth"}, {}, "model.pretrained"),
        ({"min_size": 400, "max_size": 300}, {}, "model.min_size"),
        ({"min_size_train": [100, 900]}, {}, r"model.min_size_train: \[900\]"),
        ({}, {"lr_steps": [0.8, 0.5]}, "train.lr_steps"),
        ({}, {"gpus": 2}, "train.gpus is 2"),
    ],
    ids=["mobilenet", "no-imagenet-r18", "missing-weights-file", "min-above-max", "resize-range", "lr-steps", "gpus"],
)
def test_bad_settings_are_config_errors_before_any_work(
    model: dict[str, Any], train: dict[str, Any], message: str, dataset: Path, tmp_path: Path
) -> None:
    config = tiny_config(model=model, **train)
    with pytest.raises(ConfigError, match=message):
        get_backend("detectron2").train(dataset, tmp_path / "out", config)
    assert not (tmp_path / "out").exists()


def test_batched_prediction_matches_one_by_one(first_run: tuple[Path, TrainSummary], dataset: Path) -> None:
    from tests.tiny_coco import assert_same_predictions

    predictor = get_backend("detectron2").load(first_run[1].checkpoints[-1], device="cpu")
    assert_same_predictions(predictor, dataset / "images", score_threshold=0.0)  # untrained: low scores
