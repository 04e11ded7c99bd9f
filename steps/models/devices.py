"""`train.device` / `--device`: `auto`, `cpu`, `cuda`, `cuda:N`; and deterministic CUDA kernels."""

from __future__ import annotations

import os

import torch

from steps.errors import ConfigError


def resolve_device(name: str, field: str = "train.device") -> torch.device:
    """The torch device for a config value; `auto` picks CUDA when present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{field}: {name!r} is not a device (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{field}: {name!r} requested but CUDA is not available here; use auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{field}: {name!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type != "cpu":
        raise ConfigError(f"{field}: {name!r} is not supported by the torchvision backend (use auto, cpu, cuda or cuda:N)")
    return device


def use_deterministic_kernels(device: torch.device, wanted: bool) -> None:
    """`train.deterministic` on CUDA: every op PyTorch has a deterministic kernel for uses it
    (cuDNN's deterministic convolutions, cuBLAS with a fixed workspace); an op without one warns
    once, naming itself, and stays nondeterministic (docs/metrics.md#determinism). CPU training
    is deterministic without it; there, and when not wanted, nothing changes."""
    if not wanted or device.type != "cuda":
        return
    # cuBLAS reads this when it creates its handle: before the first matrix product.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
