"""The torchvision Mask R-CNN backend: training with checkpoints and resume, and loading.

Training writes into `out_dir`: `config.yaml` (the resolved config), `checkpoints/model_*.pth`
every `train.checkpoint_period` iterations and at the end, `metrics.json` and `tensorboard/`
every `train.log_period`. A rerun into the same folder resumes from the newest readable
checkpoint and trains on to `train.iterations`; SIGTERM checkpoints and exits with 143.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steps.config import Config, ModelConfig, save_config
from steps.errors import ConfigError
from steps.models import schedule
from steps.models.base import TrainSummary
from steps.models.checkpoints import (
    capture_rng,
    checkpoint_path,
    list_checkpoints,
    load_latest,
    restore_rng,
    save_checkpoint,
)
from steps.models.coco_dataset import CocoSegmentationDataset, collate, read_split
from steps.models.devices import resolve_device
from steps.models.preemption import Preempted, StopOnSigterm, ignore_sigterm_in_worker
from steps.models.sampling import ResumableSampler
from steps.models.torchvision_model import build_model, check_model_config, load_initial_weights
from steps.models.torchvision_predictor import TorchvisionPredictor, load_predictor
from steps.models.training_log import TrainingLog, say

NAME = "torchvision"
# Not (yet) config fields: sensible fixed choices for Mask R-CNN.
SCHEDULE: schedule.ScheduleKind = "cosine"
CLIP_GRAD_NORM = 10.0


class TorchvisionBackend:
    name = NAME

    def train(self, dataset_dir: Path, out_dir: Path, config: Config) -> TrainSummary:
        return train(dataset_dir, out_dir, config)

    def load(self, checkpoint: Path, device: str = "auto") -> TorchvisionPredictor:
        return load_predictor(checkpoint, device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    t = config.train
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)


def _check_same_run(state: dict[str, Any], config: Config, categories: list[dict[str, Any]], where: Path) -> None:
    """A checkpoint can only resume the same architecture on the same categories."""
    saved_model = ModelConfig.model_validate(state["config"]["model"])
    if (saved_model.backbone, saved_model.pretrained == "none") != (config.model.backbone, config.model.pretrained == "none"):
        raise ConfigError(
            f"{where}: checkpoints there were trained with model.backbone={saved_model.backbone}, "
            f"model.pretrained={saved_model.pretrained}; use a new output folder or the same model settings"
        )
    if [c["name"] for c in state["categories"]] != [c["name"] for c in categories]:
        raise ConfigError(f"{where}: checkpoints there were trained on other categories; use a new output folder")


def train(dataset_dir: Path, out_dir: Path, config: Config) -> TrainSummary:
    """Train Mask R-CNN on `dataset_dir/train.json`, resuming from `out_dir/checkpoints` if any."""
    started = time.perf_counter()
    t = config.train
    check_model_config(config.model)
    device = resolve_device(t.device)
    split = read_split(Path(dataset_dir), "train")
    out_dir = Path(out_dir)
    checkpoint_dir = out_dir / "checkpoints"
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, out_dir / "config.yaml")

    seed_everything(t.seed)
    latest = load_latest(checkpoint_dir)
    model = build_model(config.model, len(split.categories) + 1, download=latest is None)
    if latest is None:
        load_initial_weights(model, config.model)
    model.to(device)
    optimizer = make_optimizer(model, config)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    start = 0
    if latest is not None:
        path, state = latest
        _check_same_run(state, config, split.categories, checkpoint_dir)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:  # empty when the checkpoint came from a CPU (no AMP) run
            scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"])
        start = int(state["iteration"])
        say(f"resuming from {path} at iteration {start}")
    if start >= t.iterations:
        say(f"nothing to do: {checkpoint_dir} is already at iteration {start} of {t.iterations}")
        return TrainSummary(NAME, start, start, None, [p for _, p in list_checkpoints(checkpoint_dir)], time.perf_counter() - started)

    dataset = CocoSegmentationDataset(split, hflip=t.hflip)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=t.batch_size,
        sampler=ResumableSampler(len(dataset), t.seed, start * t.batch_size),
        num_workers=t.num_workers,
        collate_fn=collate,
        worker_init_fn=ignore_sigterm_in_worker if t.num_workers else None,
        generator=torch.Generator().manual_seed(t.seed),
        pin_memory=amp,
    )
    say(
        f"training {config.model.backbone} Mask R-CNN on {device}: {len(dataset)} images, "
        f"{len(split.categories)} categories, iterations {start}->{t.iterations}, batch {t.batch_size}"
    )

    def checkpoint(done: int) -> Path:
        state = {
            "backend": NAME,
            "iteration": done,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": schedule.describe(t.lr, t.iterations, t.warmup_iters, SCHEDULE),
            "scaler": scaler.state_dict(),
            "rng": capture_rng(),
            "config": config.model_dump(mode="json"),
            "categories": split.categories,
        }
        return save_checkpoint(state, checkpoint_path(checkpoint_dir, done))

    log = TrainingLog(out_dir, start)
    model.train()
    batches = iter(loader)  # endless: the sampler never runs out
    window: dict[str, float] = {}
    window_count, window_start = 0, time.perf_counter()
    final_loss: float | None = None
    saved_at = start
    try:
        with StopOnSigterm() as sigterm:
            for iteration in range(start, t.iterations):
                images, targets = next(batches)
                images = [img.to(device, non_blocking=True) for img in images]
                targets = [{k: v.to(device, non_blocking=True) for k, v in tgt.items()} for tgt in targets]
                lr = t.lr * schedule.lr_factor(iteration, t.iterations, t.warmup_iters, SCHEDULE)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(device.type, enabled=amp):
                    losses = model(images, targets)
                loss = sum(losses.values())
                if not math.isfinite(loss.item()):
                    raise ConfigError(
                        f"training diverged at iteration {iteration + 1} (loss {loss.item()}); "
                        f"lower train.lr ({t.lr}) or raise train.warmup_iters ({t.warmup_iters})"
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_GRAD_NORM)
                scaler.step(optimizer)
                scaler.update()

                done = iteration + 1
                for name, value in losses.items():
                    window[name] = window.get(name, 0.0) + value.item()
                window_count += 1
                if done % t.log_period == 0 or done == t.iterations:
                    averaged = {name: total / window_count for name, total in window.items()}
                    seconds = (time.perf_counter() - window_start) / window_count
                    log.log(done, t.iterations, averaged, lr, seconds)
                    final_loss = sum(averaged.values())
                    window, window_count, window_start = {}, 0, time.perf_counter()
                if done % t.checkpoint_period == 0 or done == t.iterations:
                    checkpoint(done)
                    saved_at = done
                    log.flush()
                if sigterm.requested:
                    if saved_at != done:
                        checkpoint(done)
                    log.flush()
                    say(f"SIGTERM: checkpoint written at iteration {done}; exiting with {Preempted(done).code} so the step is retried")
                    raise Preempted(done)
    finally:
        log.close()
    seconds = time.perf_counter() - started
    say(f"done: {t.iterations} iterations in {seconds:.0f} s; checkpoints in {checkpoint_dir}")
    return TrainSummary(NAME, t.iterations, start, final_loss, [p for _, p in list_checkpoints(checkpoint_dir)], seconds)
