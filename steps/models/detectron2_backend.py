"""The detectron2 Mask R-CNN backend: detectron2's own trainer, hooks and checkpointer loading.

Same outputs as the torchvision backend in `out_dir`: `config.yaml` (plus `detectron2.yaml`, the
detectron2 config it became), `checkpoints/model_*.pth` (atomic, with everything `load` needs),
`metrics.json`, `tensorboard/`. A rerun resumes from the newest readable checkpoint (model,
optimizer, scheduler, AMP scaler, iteration, RNG); SIGTERM checkpoints and exits with 143.
With `train.gpus` > 1 it runs under `detectron2.engine.launch`, one process per GPU.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import AMPTrainer, SimpleTrainer, create_ddp_model, hooks, launch
from detectron2.modeling import build_model
from detectron2.solver import build_lr_scheduler, build_optimizer, get_default_optimizer_params
from detectron2.utils import comm
from detectron2.utils.env import seed_all_rng
from detectron2.utils.file_io import PathManager

from steps.config import Config, dump_config, save_config
from steps.errors import ConfigError, ExternalError
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
    unpickling_reason,
)
from steps.models import safe_pickle
from steps.models.coco_dataset import read_split
from steps.models.detectron2_config import build_cfg, check_model_config
from steps.models.detectron2_data import build_train_loader, register_split, unregister
from steps.models.detectron2_hooks import Checkpoints, ClipGradNorm, LogProgress
from steps.models.detectron2_predictor import NAME, Detectron2Predictor, load_predictor
from steps.models.devices import resolve_device, use_deterministic_kernels
from steps.models.durable_checkpoints import CheckpointMirror
from steps.models.preemption import StopOnSigterm
from steps.models.training_run import check_backend_config, run_training
from steps.models.training_log import TrainingLog, say


class Detectron2Backend:
    name = NAME

    def check(self, config: Config) -> None:
        check_config(config)

    def train(self, dataset_dir: Path, out_dir: Path, config: Config) -> TrainSummary:
        return train(dataset_dir, out_dir, config)

    def load(self, checkpoint: Path, device: str = "auto") -> Detectron2Predictor:
        return load_predictor(checkpoint, device)


def check_config(config: Config) -> int:
    """Reject what this backend cannot run, before any work; returns the number of processes."""
    return check_backend_config(config, check_model_config)


def train(dataset_dir: Path, out_dir: Path, config: Config) -> TrainSummary:
    """Train Mask R-CNN on `dataset_dir/train.json`, resuming from `out_dir/checkpoints` if any."""
    return run_training(
        NAME, dataset_dir, out_dir, config, check_model_config,
        train_one=_train,
        launch_workers=lambda world, data, out, cfg: launch(_train, world, dist_url="auto", args=(data, out, cfg)),
    )


def make_optimizer(cfg: Any, model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    """detectron2's SGD (no weight decay on norm layers or biases), or AdamW over the same parameter groups."""
    if config.train.optimizer == "sgd":
        return build_optimizer(cfg, model)
    params = get_default_optimizer_params(model, base_lr=cfg.SOLVER.BASE_LR, weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
                                          weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS)
    return torch.optim.AdamW(params, lr=cfg.SOLVER.BASE_LR, weight_decay=cfg.SOLVER.WEIGHT_DECAY)


class SafeCheckpointer(DetectionCheckpointer):
    """detectron2's checkpointer, except that `.pkl` files (its model zoo format) are read with an
    unpickler that accepts only arrays and containers: its own `pickle.load` would run any code the
    file names. Other files go through `torch.load`, which is weights-only by default."""

    def _load_file(self, filename: str) -> dict[str, Any]:
        if not filename.endswith(".pkl"):
            return super()._load_file(filename)
        with PathManager.open(filename, "rb") as file:
            data = safe_pickle.load(file)
        if not isinstance(data, dict):
            raise safe_pickle.UnsafePickleError(f"it holds {type(data).__name__}, not a dict of weights")
        if "model" in data and "__author__" in data:  # detectron2 model zoo format
            return data
        # Detectron1 / Caffe2 format: the weights (under "blobs" in detection models), whose names
        # detectron2 maps by its matching heuristics; optimizer momenta are not weights.
        blobs = data.get("blobs", data)
        weights = {key: value for key, value in blobs.items() if not key.endswith("_momentum")}
        return {"model": weights, "__author__": "Caffe2", "matching_heuristics": True}


def load_initial_weights(model: torch.nn.Module, weights: str, pretrained: str) -> None:
    """MODEL.WEIGHTS through detectron2's checkpointer (zoo URLs, .pkl read safely, our
    checkpoints); shape mismatches (heads for another category count) are skipped with a warning,
    but a file that leaves part of the backbone at its random start is a ConfigError, and so is one
    that leaves the FPN random (unless only a backbone was asked for: pretrained=imagenet)."""
    before = _backbone_convs(model, fpn=pretrained != "imagenet")
    try:
        SafeCheckpointer(model).load(weights, checkpointables=[])
    except safe_pickle.UnsafePickleError as exc:
        raise ConfigError(f"model.pretrained={pretrained}: {weights}: {exc}") from None
    except pickle.UnpicklingError as exc:  # torch's weights-only refusal
        raise ConfigError(f"model.pretrained: cannot read {weights} as weights: {unpickling_reason(exc)}") from None
    except Exception as exc:  # a download or format failure: all mean "cannot start from this"
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if Path(weights).is_file():
            raise ConfigError(f"model.pretrained: cannot read {weights} as weights ({reason})") from None
        raise ExternalError(
            f"model.pretrained={pretrained}: loading {weights} failed ({reason}); downloads need internet access "
            "(or a warm ~/.torch/iopath_cache); or use pretrained=none or a weights file"
        ) from None
    # A convolution still equal to its random start was not in the file (or did not fit): frozen
    # BatchNorm and frozen stages would keep it random for good.
    unfit = [name for name, value in _backbone_convs(model, fpn=pretrained != "imagenet").items()
             if torch.equal(value, before[name])]
    if unfit:
        raise ConfigError(
            f"model.pretrained={pretrained}: {weights} fits only {len(before) - len(unfit)} of the {len(before)} "
            f"backbone and FPN convolutions (not {unfit[0]}, ...); use weights of the same backbone with its FPN, "
            "pretrained=imagenet for a backbone alone, or pretrained=none"
        )


def _backbone_convs(model: torch.nn.Module, fpn: bool = True) -> dict[str, torch.Tensor]:
    """The backbone's convolutions (bottom_up), and with `fpn` the FPN's (the rest of `backbone.`)."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()
            if name.startswith("backbone.") and value.ndim == 4 and (fpn or name.startswith("backbone.bottom_up."))}


def _train(dataset_dir: Path, out_dir: Path, config: Config) -> TrainSummary:
    """The training run of this process (rank 0 of 1, or one of `launch`'s workers)."""
    started = time.perf_counter()
    t = config.train
    rank, world = comm.get_rank(), comm.get_world_size()
    main = rank == 0
    if world == 1:
        device = str(resolve_device(t.device))
    else:  # one GPU per process; CPU processes only where launch fell back to gloo (tests)
        device = f"cuda:{comm.get_local_rank()}" if torch.cuda.is_available() else "cpu"
    split = read_split(dataset_dir, "train")
    checkpoint_dir = out_dir / "checkpoints"
    cfg = build_cfg(config, len(split.categories), device, out_dir)
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, out_dir / "config.yaml")
        (out_dir / "detectron2.yaml").write_text(cfg.dump())

    seed_all_rng(t.seed)
    use_deterministic_kernels(torch.device(device), t.deterministic)
    if world > 1 and not main:
        dist.barrier()  # rank 0 reads first: it moves unreadable checkpoints aside
    latest = load_latest(checkpoint_dir)
    if world > 1 and main:
        dist.barrier()
    model = build_model(cfg)
    if latest is None and cfg.MODEL.WEIGHTS:
        load_initial_weights(model, cfg.MODEL.WEIGHTS, config.model.pretrained)
    optimizer = make_optimizer(cfg, model, config)
    scheduler = build_lr_scheduler(cfg, optimizer)
    amp = cfg.SOLVER.AMP.ENABLED
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    start, history = 0, []
    if latest is not None:
        path, state = latest
        check_resumable(state, NAME, config, split.categories, checkpoint_dir, path)
        start = resume(state, path, [(model, "model"), (optimizer, "optimizer"), (scheduler, "scheduler"),
                                     (scaler, "scaler")])
        history = resume_history(state, config)
        # The optimizer saved the rate for its next step; recompute it, the total may have changed.
        for group, lr in zip(optimizer.param_groups, scheduler.get_lr()):
            group["lr"] = lr
        if main:
            say(f"resuming from {path} at iteration {start}")
    if start >= t.iterations:
        if main:
            say(f"nothing to do: {checkpoint_dir} is already at iteration {start} of {t.iterations}")
        return TrainSummary(NAME, start, start, None, [p for _, p in list_checkpoints(checkpoint_dir)], time.perf_counter() - started)

    mirror = CheckpointMirror.from_uri(t.checkpoint_uri, out_dir) if main else None

    def save(done: int) -> None:
        state = {
            "backend": NAME,
            "iteration": done,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": capture_rng(),
            "config": dump_config(config),
            "categories": split.categories,
            "history": history,
        }
        written = save_checkpoint(state, checkpoint_path(checkpoint_dir, done))
        log.flush()
        if mirror:
            mirror.upload(written)

    name = register_split(split)
    log = TrainingLog(out_dir, start) if main else None
    try:
        loader = build_train_loader(cfg, name, t.hflip, start * t.batch_size, rank, world)
        ddp_model = create_ddp_model(model, broadcast_buffers=False, **({} if device.startswith("cuda") else {"device_ids": None}))
        trainer = (
            AMPTrainer(ddp_model, loader, optimizer, grad_scaler=scaler) if amp else SimpleTrainer(ddp_model, loader, optimizer)
        )
        if main:
            say(
                f"training {config.model.backbone} Mask R-CNN (detectron2) on {device}{f' x{world}' if world > 1 else ''}: "
                f"{len(split.images)} images, {len(split.categories)} categories, iterations {start}->{t.iterations}, "
                f"batch {t.batch_size}, amp {'on' if amp else 'off'}"
            )
        with StopOnSigterm() as sigterm:
            progress = LogProgress(log, t.log_period, t.iterations) if log else None
            trainer.register_hooks(
                [
                    hooks.IterationTimer(),
                    hooks.LRScheduler(optimizer, scheduler),  # before the loggers: it records this step's rate
                    ClipGradNorm(t.clip_grad_norm) if t.clip_grad_norm > 0 else None,
                    progress,
                    Checkpoints(save if main else None, t.checkpoint_period, t.iterations, sigterm),
                ]
            )
            try:
                trainer.train(start, t.iterations)
            except FloatingPointError as exc:  # detectron2's check for a NaN/inf loss
                raise ConfigError(
                    f"training diverged ({str(exc).splitlines()[0]}); lower train.lr ({t.lr}) or raise train.warmup_iters ({t.warmup_iters})"
                ) from None
    finally:
        if log:
            log.close()
        unregister(name)
    seconds = time.perf_counter() - started
    # The summary line ("train: done: ...") is the caller's: one line per run, not one per layer.
    final = progress.final_loss if main and progress else None
    return TrainSummary(NAME, t.iterations, start, final, [p for _, p in list_checkpoints(checkpoint_dir)], seconds)
