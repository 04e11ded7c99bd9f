"""Model backends behind one small interface; `get_backend(config.model.backend)` picks one.

Importing this package does not import torch: backends load on demand, so steps that only need
the interface (and machines without detectron2) stay light.
"""

from __future__ import annotations

import warnings

from steps.errors import ConfigError
from steps.models.base import Backend, Predictor, TrainSummary

BACKENDS = ("torchvision", "detectron2")

__all__ = ["BACKENDS", "Backend", "Predictor", "TrainSummary", "get_backend"]


def get_backend(name: str) -> Backend:
    """The backend called `name` (`model.backend` in the config)."""
    if name == "torchvision":
        from steps.models.torchvision_backend import TorchvisionBackend

        return TorchvisionBackend()
    if name == "detectron2":
        try:
            import detectron2  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                f"model.backend: 'detectron2' is not importable ({exc}). detectron2 is not on PyPI: "
                "it is built from source in the train image (see images/train); "
                "locally use --set model.backend=torchvision"
            ) from None
        with warnings.catch_warnings():  # detectron2's layers still call torch.jit.script at import
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
            from steps.models.detectron2_backend import Detectron2Backend

        return Detectron2Backend()
    raise ConfigError(f"model.backend: unknown backend {name!r} (known: {', '.join(BACKENDS)})")
