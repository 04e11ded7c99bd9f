"""Inference with a torchvision Mask R-CNN checkpoint, producing COCO results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.models.detection import MaskRCNN

from steps.config import ModelConfig
from steps.models.batching import decode
from steps.models.checkpoints import open_checkpoint
from steps.models.devices import resolve_device
from steps.models.results import coco_results
from steps.models.torchvision_model import build_model

# Mask R-CNN outputs per-pixel probabilities; COCO's convention binarises at 0.5.
MASK_THRESHOLD = 0.5


class TorchvisionPredictor:
    def __init__(self, model: MaskRCNN, categories: list[dict[str, Any]], device: torch.device) -> None:
        self.model = model.eval().to(device)
        self.categories = categories
        self.device = device
        self._category_of_label = {i + 1: cat["id"] for i, cat in enumerate(categories)}

    def predict(self, image_path: Path, image_id: int, score_threshold: float) -> list[dict[str, Any]]:
        """COCO results for one image, best score first."""
        return self.predict_batch([decode(Path(image_path))], [image_id], score_threshold)[0]

    @torch.inference_mode()
    def predict_batch(self, images: Sequence[np.ndarray], image_ids: Sequence[int],
                      score_threshold: float) -> list[list[dict[str, Any]]]:
        """COCO results per image (best score first), all images in one forward pass."""
        # uint8 goes to the device, the float conversion happens there (a quarter of the copy).
        tensors = [torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1).float() / 255.0
                   for image in images]
        # The model drops boxes under its own threshold before NMS; align it with the caller's.
        self.model.roi_heads.score_thresh = score_threshold
        with torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            outputs = self.model(tensors)
        return [self._results(output, image_id, score_threshold) for output, image_id in zip(outputs, image_ids)]

    def _results(self, output: dict[str, torch.Tensor], image_id: int, score_threshold: float) -> list[dict[str, Any]]:
        boxes = output["boxes"].float().cpu().numpy()
        scores = output["scores"].float().cpu().numpy()
        labels = output["labels"].cpu().numpy()
        masks = (output["masks"][:, 0] > MASK_THRESHOLD).cpu().numpy()
        return coco_results(image_id, boxes, scores, labels, masks, self._category_of_label, score_threshold)


def load_predictor(checkpoint: Path, device: str = "auto") -> TorchvisionPredictor:
    """Rebuild the model from the config stored in `checkpoint` and load its weights."""
    path = Path(checkpoint)
    state = open_checkpoint(path, "torchvision")
    model_config = ModelConfig.model_validate(state["config"]["model"])
    categories = list(state["categories"])
    model = build_model(model_config, len(categories) + 1, download=False)
    model.load_state_dict(state["model"])
    return TorchvisionPredictor(model, categories, resolve_device(device, field="device"))
