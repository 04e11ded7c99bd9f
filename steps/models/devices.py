"""`train.device` / `--device`: `auto`, `cpu`, `cuda`, `cuda:N`."""

from __future__ import annotations

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
