"""Training settings that both backends read the same way, checked before any work starts.

Pydantic checks each value on its own; what depends on several values (a resize range against
`max_size`, a batch split over GPUs) or on this machine (how many GPUs) is checked here.
"""

from __future__ import annotations

import math

import torch

from steps.config import Config, ModelConfig, TrainConfig
from steps.errors import ConfigError


def train_min_sizes(model: ModelConfig) -> tuple[int, ...]:
    """Shorter-side sizes a training image is resized to (one picked at random per image)."""
    return tuple(model.min_size_train) or (model.min_size,)


def step_milestones(train: TrainConfig) -> list[int]:
    """Iterations at which the step schedule divides the rate by 10 (first iteration with the lower rate)."""
    return [math.ceil(fraction * train.iterations) for fraction in train.lr_steps]


def cuda_device_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def world_size(train: TrainConfig, available: int | None = None) -> int:
    """Processes to train with: 1, or train.gpus when this node has that many CUDA devices."""
    if train.gpus == 1:
        return 1
    available = cuda_device_count() if available is None else available
    if train.device not in ("auto", "cuda"):
        raise ConfigError(f"train.gpus={train.gpus} needs train.device auto or cuda, not {train.device!r}")
    if train.gpus > available:
        raise ConfigError(
            f"train.gpus={train.gpus} but this node has {available} CUDA device(s); "
            "lower train.gpus or give the train step's pod that many GPUs"
        )
    if train.batch_size % train.gpus:
        raise ConfigError(
            f"train.batch_size={train.batch_size} does not split evenly over train.gpus={train.gpus}; "
            "use a multiple of train.gpus"
        )
    return train.gpus


def check_train_settings(config: Config, available_gpus: int | None = None) -> int:
    """Reject settings no backend can run with; returns the world size (see `world_size`)."""
    model, train = config.model, config.train
    if model.min_size > model.max_size:
        raise ConfigError(f"model.min_size ({model.min_size}) is larger than model.max_size ({model.max_size}); swap them")
    bad = [size for size in model.min_size_train if not 0 < size <= model.max_size]
    if bad:
        raise ConfigError(
            f"model.min_size_train: {bad} out of range; each size must be between 1 and model.max_size ({model.max_size})"
        )
    fractions = list(train.lr_steps)
    if any(not 0 < f < 1 for f in fractions) or fractions != sorted(fractions):
        raise ConfigError(
            f"train.lr_steps: {fractions} must be ascending fractions of train.iterations, each in (0, 1), e.g. [0.67, 0.89]"
        )
    if train.checkpoint_uri.startswith("gs://") and not train.checkpoint_uri[len("gs://"):].split("/")[0]:
        raise ConfigError(f"train.checkpoint_uri: {train.checkpoint_uri!r} has no bucket; expected gs://BUCKET/PREFIX or a folder")
    return world_size(train, available_gpus)
