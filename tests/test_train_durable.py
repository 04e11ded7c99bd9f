"""`python -m steps.train --checkpoint-uri`: a retried pod resumes from the durable checkpoints.

A pod on a preempted spot node loses its disk. The step uploads each checkpoint (with metrics.json
and TensorBoard events) as it is written; the retry starts with an empty output folder, downloads
them and trains on. Runs against a folder and a real GCS emulator, with the torchvision backend.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from steps import storage
from steps.errors import ConfigError
from steps.models.durable_checkpoints import CheckpointMirror
from steps.train.__main__ import main
from tests.gcs_emulator import gcs_emulator  # noqa: F401
from tests.tiny_coco import checkpoint_iterations, make_coco_dataset, metric_iterations

SETTINGS: dict[str, Any] = {
    "model.backbone": "resnet18", "model.pretrained": "none", "model.min_size": 128, "model.max_size": 160,
    "model.roi_batch_size_per_image": 32, "train.batch_size": 2, "train.checkpoint_period": 2, "train.log_period": 1,
    "train.warmup_iters": 1, "train.lr": 0.005, "train.num_workers": 0, "train.device": "cpu",
}


def train_args(dataset: Path, out: Path, iterations: int, *extra: str) -> list[str]:
    sets = [item for key, value in {**SETTINGS, "train.iterations": iterations}.items() for item in ("--set", f"{key}={value}")]
    return ["--dataset-dir", str(dataset), "--output", str(out), *sets, *extra]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_coco_dataset(tmp_path_factory.mktemp("coco") / "dataset")


@pytest.fixture(params=["local", pytest.param("gcs", marks=pytest.mark.integration)])
def checkpoint_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty durable location on each storage backend."""
    if request.param == "local":
        return str(tmp_path / "durable")
    bucket = request.getfixturevalue("gcs_emulator").make_bucket(f"ckpt-{uuid.uuid4().hex[:12]}")
    return storage.join(bucket, "checkpoints", "run-1")


def test_a_lost_pod_resumes_from_the_uploaded_checkpoints(
    checkpoint_uri: str, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pod"
    mirror = CheckpointMirror(checkpoint_uri, out)
    assert main(train_args(dataset, out, 2, "--checkpoint-uri", checkpoint_uri)) == 0
    remote = mirror.remote_files()
    assert {"checkpoints/model_0000002.pth", "metrics.json"} <= set(remote)
    assert any(name.startswith("tensorboard/events.out.tfevents.") for name in remote)
    assert not [name for name in remote if "/." in name or name.startswith(".")], "temp files left at the URI"

    shutil.rmtree(out)  # the pod is gone, and its disk with it
    capsys.readouterr()
    assert main(train_args(dataset, out, 4, "--checkpoint-uri", checkpoint_uri)) == 0
    printed = capsys.readouterr().out
    assert "restored" in printed and "at iteration 2" in printed
    assert "train: done: torchvision: 4 iterations, resumed at 2" in printed
    assert checkpoint_iterations(out) == [2, 4]
    assert metric_iterations(out) == [1, 2, 3, 4]  # the restored log, continued
    assert "checkpoints/model_0000004.pth" in mirror.remote_files()


def test_the_config_value_works_like_the_flag(dataset: Path, tmp_path: Path) -> None:
    uri = str(tmp_path / "durable")
    assert main(train_args(dataset, tmp_path / "out", 2, "--set", f"train.checkpoint_uri={uri}")) == 0
    assert CheckpointMirror(uri, tmp_path).remote_files()[:1] == ["checkpoints/model_0000002.pth"]


def test_a_bad_setting_fails_before_the_dataset_checkout(tmp_path: Path) -> None:
    # The repo does not exist: reaching the checkout would be a different error.
    args = ["--repo", str(tmp_path / "no-repo"), "--dataset-version", "datasets/v1", "--output", str(tmp_path / "out"),
            "--set", "train.lr_steps=[0.9, 0.5]"]
    with pytest.raises(ConfigError, match="train.lr_steps"):
        main(args)
    with pytest.raises(ConfigError, match="no bucket"):
        main([*args[:6], "--checkpoint-uri", "gs:///x"])
    assert not (tmp_path / "out").exists()
