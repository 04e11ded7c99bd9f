"""The small interface every model backend implements (torchvision now, detectron2 later).

A backend trains from a COCO dataset folder into an output folder of checkpoints and loads a
checkpoint into a predictor that returns COCO results. Steps talk to this interface only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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


class Predictor(Protocol):
    """A loaded model: COCO category list plus per-image inference."""

    categories: list[dict[str, Any]]

    def predict(self, image_path: Path, image_id: int, score_threshold: float) -> list[dict[str, Any]]:
        """COCO results: {image_id, category_id, bbox [x, y, w, h], score, segmentation (RLE)}."""
        ...


class Backend(Protocol):
    name: str

    def train(self, dataset_dir: Path, out_dir: Path, config: Config) -> TrainSummary:
        """Train (or resume) into `out_dir`: checkpoints/, metrics.json, tensorboard/, config.yaml."""
        ...

    def load(self, checkpoint: Path, device: str = "auto") -> Predictor:
        """A predictor from one checkpoint file written by `train`."""
        ...
