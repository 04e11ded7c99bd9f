"""Training settings that both backends read the same way, checked before any work starts.

Pydantic checks each value on its own; what depends on several values (a resize range against
`max_size`, a batch split over GPUs) or on this machine (how many GPUs) is checked here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

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


# The train step's pod sets this to the GPUs it requested (the chart's steps.train.gpus;
# workflows/pipeline.py POD_GPUS_ENV): on a cluster that count, not train.gpus, decides.
POD_GPUS_ENV = "TRAINYARD_POD_GPUS"


def pod_gpus(environ: Mapping[str, str] = os.environ) -> int | None:
    """The GPUs the pod was given, or None off a cluster (or for a pod without GPUs)."""
    value = environ.get(POD_GPUS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ConfigError(f"{POD_GPUS_ENV}={value!r}: expected the pod's GPU count; set steps.train.gpus in the chart")
    return int(value) or None


def world_size(train: TrainConfig, available: int | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """Processes to train with: the pod's GPU count on a cluster, else train.gpus; 1 for one GPU."""
    given = pod_gpus(environ)
    gpus, field = (given, f"the pod's GPU count ({POD_GPUS_ENV}, steps.train.gpus of the chart)") if given else (
        train.gpus, "train.gpus")
    if gpus == 1:
        return 1
    available = cuda_device_count() if available is None else available
    if train.device not in ("auto", "cuda"):
        raise ConfigError(f"{field} is {gpus}: that needs train.device auto or cuda, not {train.device!r}")
    if gpus > available:
        raise ConfigError(
            f"{field} is {gpus} but this node has {available} CUDA device(s); "
            "lower it or give the train step's pod that many GPUs"
        )
    if train.batch_size % gpus:
        raise ConfigError(
            f"train.batch_size={train.batch_size} does not split evenly over {gpus} GPUs ({field}); "
            f"use a multiple of {gpus}"
        )
    return gpus


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
