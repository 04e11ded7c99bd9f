"""The frame every backend's training run shares, around its own training loop.

Everything is checked before any work; durable checkpoints are restored; then the backend trains
in this process, or in one process per GPU, whose summary is read back from what rank 0 wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from steps.config import Config, ModelConfig
from steps.models import distributed
from steps.models.base import TrainSummary
from steps.models.checkpoints import list_checkpoints
from steps.models.coco_dataset import read_split
from steps.models.devices import resolve_device
from steps.models.durable_checkpoints import CheckpointMirror
from steps.models.train_settings import check_train_settings
from steps.models.training_log import last_logged_loss, say

TrainOne = Callable[[Path, Path, Config], TrainSummary]
LaunchWorkers = Callable[[int, Path, Path, Config], None]


def check_backend_config(config: Config, check_model: Callable[[ModelConfig], None]) -> int:
    """Reject what a backend cannot run, before any work; returns the number of processes."""
    check_model(config.model)
    world = check_train_settings(config)
    if world == 1:
        resolve_device(config.train.device)
    return world


def run_training(name: str, dataset_dir: Path, out_dir: Path, config: Config,
                 check_model: Callable[[ModelConfig], None], train_one: TrainOne,
                 launch_workers: LaunchWorkers) -> TrainSummary:
    """Train on `dataset_dir/train.json`, resuming from `out_dir/checkpoints` (or the durable copy)."""
    started = time.perf_counter()
    world = check_backend_config(config, check_model)
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    read_split(dataset_dir, "train")  # a missing or malformed dataset fails before any work
    mirror = CheckpointMirror.from_uri(config.train.checkpoint_uri, out_dir)
    if mirror:
        mirror.restore()
    if world == 1:
        return train_one(dataset_dir, out_dir, config)
    say(f"training on {world} GPUs: one process each, {config.train.batch_size // world} images per GPU per iteration")
    checkpoint_dir = out_dir / "checkpoints"
    before = list_checkpoints(checkpoint_dir)
    distributed.run_workers(lambda: launch_workers(world, dataset_dir, out_dir, config), checkpoint_dir)
    # The workers' return values stay in their processes: read what rank 0 wrote instead.
    start = before[-1][0] if before else 0
    checkpoints = [path for _, path in list_checkpoints(checkpoint_dir)]
    return TrainSummary(name, config.train.iterations, start, last_logged_loss(out_dir, start), checkpoints,
                        time.perf_counter() - started)
