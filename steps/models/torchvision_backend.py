"""The torchvision Mask R-CNN backend: training with checkpoints and resume, and loading.

Training writes into `out_dir`: `config.yaml` (the resolved config), `checkpoints/model_*.pth`
every `train.checkpoint_period` iterations and at the end, `metrics.json` and `tensorboard/`
every `train.log_period`. A rerun into the same folder resumes from the newest readable
checkpoint and trains on to `train.iterations`; SIGTERM checkpoints and exits with 143.
With `train.gpus` > 1 it runs one DDP process per GPU; rank 0 writes every output.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from steps.config import Config, dump_config, save_config
from steps.errors import ConfigError
from steps.models import distributed, schedule
from steps.models.base import TrainSummary
from steps.models.checkpoints import (
    capture_rng,
    check_resumable,
    checkpoint_path,
    list_checkpoints,
    load_latest,
    resume,
    resume_history,
    save_checkpoint,
)
from steps.models.coco_dataset import CocoSegmentationDataset, collate, read_split, to_model_input
from steps.models.devices import resolve_device, use_deterministic_kernels
from steps.models.durable_checkpoints import CheckpointMirror
from steps.models.preemption import Preempted, StopOnSigterm, ignore_sigterm_in_worker
from steps.models.sampling import ResumableSampler
from steps.models.torchvision_model import build_model, check_model_config, load_initial_weights
from steps.models.torchvision_predictor import TorchvisionPredictor, load_predictor
from steps.models.train_settings import train_min_sizes
from steps.models.training_run import check_backend_config, run_training
from steps.models.training_log import TrainingLog, say

NAME = "torchvision"


class TorchvisionBackend:
    name = NAME

    def check(self, config: Config) -> None:
        check_config(config)

    def train(self, dataset_dir: Path, out_dir: Path, config: Config) -> TrainSummary:
        return train(dataset_dir, out_dir, config)

    def load(self, checkpoint: Path, device: str = "auto") -> TorchvisionPredictor:
        return load_predictor(checkpoint, device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    """SGD or AdamW with weight decay on weights only: none on norm layers' scales and shifts or on
    biases (1-D parameters), as detectron2 does, since shrinking them only fights the normalisation."""
    t = config.train
    trainable = [p for p in model.parameters() if p.requires_grad]
    params = [
        {"params": [p for p in trainable if p.ndim > 1], "weight_decay": t.weight_decay},
        {"params": [p for p in trainable if p.ndim <= 1], "weight_decay": 0.0},
    ]
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)


def check_config(config: Config) -> int:
    """Reject what this backend cannot run, before any work; returns the number of processes."""
    return check_backend_config(config, check_model_config)


def train(dataset_dir: Path, out_dir: Path, config: Config) -> TrainSummary:
    """Train Mask R-CNN on `dataset_dir/train.json`, resuming from `out_dir/checkpoints` if any."""
    return run_training(
        NAME, dataset_dir, out_dir, config, check_model_config,
        train_one=lambda data, out, cfg: _train(0, 1, data, out, cfg),
        launch_workers=lambda world, data, out, cfg: distributed.spawn(_train_worker, world, (data, out, cfg)),
    )


def _train_worker(rank: int, world: int, dataset_dir: Path, out_dir: Path, config: Config) -> None:
    _train(rank, world, dataset_dir, out_dir, config)


def _train(rank: int, world: int, dataset_dir: Path, out_dir: Path, config: Config) -> TrainSummary:
    """The training loop of process `rank` of `world` (1: plain single-device training)."""
    started = time.perf_counter()
    t = config.train
    main = rank == 0
    device = resolve_device(t.device) if world == 1 else torch.device("cuda", rank) if torch.cuda.is_available() else torch.device("cpu")
    split = read_split(dataset_dir, "train")
    checkpoint_dir = out_dir / "checkpoints"
    mirror = CheckpointMirror.from_uri(t.checkpoint_uri, out_dir) if main else None
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, out_dir / "config.yaml")

    seed_everything(t.seed)
    use_deterministic_kernels(device, t.deterministic)
    if world > 1 and not main:
        dist.barrier()  # rank 0 reads first: it moves unreadable checkpoints aside
    latest = load_latest(checkpoint_dir)
    if world > 1 and main:
        dist.barrier()
    model = build_model(config.model, len(split.categories) + 1, download=latest is None)
    # Multi-scale training: the transform picks a shorter side per image while in train mode.
    model.transform.min_size = train_min_sizes(config.model)
    if latest is None:
        load_initial_weights(model, config.model)
    if world > 1 and device.type == "cuda" and config.model.pretrained == "none":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # per-GPU batches are small
    model.to(device)
    optimizer = make_optimizer(model, config)
    amp = t.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    start, history = 0, []
    if latest is not None:
        path, state = latest
        check_resumable(state, NAME, config, split.categories, checkpoint_dir, path)
        # The scaler's state is empty when the checkpoint came from a CPU (no AMP) run.
        start = resume(state, path, [(model, "model"), (optimizer, "optimizer"), (scaler, "scaler")])
        history = resume_history(state, config)
        if main:
            say(f"resuming from {path} at iteration {start}")
    if start >= t.iterations:
        if main:
            say(f"nothing to do: {checkpoint_dir} is already at iteration {start} of {t.iterations}")
        return TrainSummary(NAME, start, start, None, [p for _, p in list_checkpoints(checkpoint_dir)], time.perf_counter() - started)
    ddp_devices = [rank] if device.type == "cuda" else None
    forward = torch.nn.parallel.DistributedDataParallel(model, device_ids=ddp_devices) if world > 1 else model

    dataset = CocoSegmentationDataset(split, hflip=t.hflip)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=t.batch_size // world,
        sampler=ResumableSampler(len(dataset), t.seed, start * t.batch_size, rank, world),
        num_workers=t.num_workers,
        collate_fn=collate,
        worker_init_fn=ignore_sigterm_in_worker if t.num_workers else None,
        generator=torch.Generator().manual_seed(t.seed),
        pin_memory=device.type == "cuda",
    )
    if main:
        say(
            f"training {config.model.backbone} Mask R-CNN on {device}{f' x{world}' if world > 1 else ''}: "
            f"{len(dataset)} images, {len(split.categories)} categories, iterations {start}->{t.iterations}, "
            f"batch {t.batch_size}, amp {'on' if amp else 'off'}"
        )
    milestones = t.lr_steps

    def checkpoint(done: int) -> Path:
        state = {
            "backend": NAME,
            "iteration": done,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": schedule.describe(t.lr, t.iterations, t.warmup_iters, t.lr_schedule, milestones),
            "scaler": scaler.state_dict(),
            "rng": capture_rng(),
            "config": dump_config(config),
            "categories": split.categories,
            "history": history,
        }
        path = save_checkpoint(state, checkpoint_path(checkpoint_dir, done))
        if mirror:
            mirror.upload(path)
        return path

    log = TrainingLog(out_dir, start) if main else None
    forward.train()
    batches = iter(loader)  # endless: the sampler never runs out
    window: dict[str, float] = {}
    window_count, window_start = 0, time.perf_counter()
    final_loss: float | None = None
    saved_at = start
    try:
        with StopOnSigterm() as sigterm:
            for iteration in range(start, t.iterations):
                images, targets = next(batches)
                images = [to_model_input(img, device) for img in images]
                targets = [{k: v.to(device, non_blocking=True) for k, v in tgt.items()} for tgt in targets]
                lr = t.lr * schedule.lr_factor(iteration, t.iterations, t.warmup_iters, t.lr_schedule, milestones)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(device.type, enabled=amp):
                    losses = forward(images, targets)
                loss = sum(losses.values())
                if not math.isfinite(loss.item()):
                    raise ConfigError(
                        f"training diverged at iteration {iteration + 1} (loss {loss.item()}); "
                        f"lower train.lr ({t.lr}) or raise train.warmup_iters ({t.warmup_iters})"
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if t.clip_grad_norm > 0:
                    scaler.unscale_(optimizer)  # clip the true gradients, not the AMP-scaled ones
                    torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()

                done = iteration + 1
                for name, value in losses.items():
                    window[name] = window.get(name, 0.0) + value.item()
                window_count += 1
                if log and (done % t.log_period == 0 or done == t.iterations):
                    averaged = {name: total / window_count for name, total in window.items()}
                    seconds = (time.perf_counter() - window_start) / window_count
                    log.log(done, t.iterations, averaged, lr, seconds)
                    final_loss = sum(averaged.values())
                    window, window_count, window_start = {}, 0, time.perf_counter()
                if done % t.checkpoint_period == 0 or done == t.iterations:
                    if main:
                        checkpoint(done)
                        log.flush()
                    saved_at = done
                if distributed.agree_to_stop(sigterm.requested):
                    if main:
                        if saved_at != done:
                            checkpoint(done)
                        log.flush()
                        say(f"SIGTERM: checkpoint written at iteration {done}; exiting with {Preempted(done).code} so the step is retried")
                    raise Preempted(done)
    finally:
        if log:
            log.close()
    seconds = time.perf_counter() - started
    # The summary line ("train: done: ...") is the caller's: one line per run, not one per layer.
    return TrainSummary(NAME, t.iterations, start, final_loss, [p for _, p in list_checkpoints(checkpoint_dir)], seconds)
