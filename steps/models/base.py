"""The small interface every model backend implements (torchvision and detectron2).

A backend trains from a COCO dataset folder into an output folder of checkpoints and loads a
checkpoint into a predictor that returns COCO results. Steps talk to this interface only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from steps.config import Config


@dataclass(frozen=True)
class TrainSummary:
    """What a training run did; `start_iteration` > 0 means it resumed from a checkpoint."""

    backend: str
    iterations: int
    start_iteration: int
    final_loss: float | None  # None when there was nothing left to train
    checkpoints: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        """One log line: what ran, from where, and what it left."""
        resumed = f", resumed at {self.start_iteration}" if self.start_iteration else ""
        loss = f", final loss {self.final_loss:.3f}" if self.final_loss is not None else ", nothing left to train"
        folder = f" in {self.checkpoints[-1].parent}" if self.checkpoints else ""
        return f"{self.backend}: {self.iterations} iterations{resumed}{loss}, {len(self.checkpoints)} checkpoint(s){folder}, {self.seconds:.0f} s"


class Predictor(Protocol):
    """A loaded model: COCO category list plus batched inference (see steps/models/batching.py)."""

    categories: list[dict[str, Any]]

    def predict(self, image_path: Path, image_id: int, score_threshold: float) -> list[dict[str, Any]]:
        """COCO results: {image_id, category_id, bbox [x, y, w, h], score, segmentation (RLE)}."""
        ...

    def predict_batch(self, images: Sequence[np.ndarray], image_ids: Sequence[int],
                      score_threshold: float) -> list[list[dict[str, Any]]]:
        """`predict` for decoded H x W x 3 uint8 RGB images in one model call (float16 autocast on
        CUDA); one result list per image, the same as one-by-one up to padding and rounding."""
        ...


class Backend(Protocol):
    name: str

    def check(self, config: Config) -> None:
        """Raise ConfigError for settings this backend cannot train with, before any work starts."""
        ...

    def train(self, dataset_dir: Path, out_dir: Path, config: Config) -> TrainSummary:
        """Train (or resume) into `out_dir`: checkpoints/, metrics.json, tensorboard/, config.yaml."""
        ...

    def load(self, checkpoint: Path, device: str = "auto") -> Predictor:
        """A predictor from one checkpoint file written by `train`."""
        ...
