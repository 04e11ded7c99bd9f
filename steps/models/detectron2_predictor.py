"""Inference with a detectron2 Mask R-CNN checkpoint, producing COCO results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.data import transforms as T
from detectron2.modeling import build_model

from steps.config import Config
from steps.models.batching import decode
from steps.models.checkpoints import open_checkpoint
from steps.models.detectron2_config import build_cfg
from steps.models.devices import resolve_device
from steps.models.results import coco_results

NAME = "detectron2"


class Detectron2Predictor:
    def __init__(self, model: torch.nn.Module, cfg: CfgNode, categories: list[dict[str, Any]]) -> None:
        self.model = model.eval()
        self.device = torch.device(cfg.MODEL.DEVICE)
        self.categories = categories
        self._resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
        self._bgr = cfg.INPUT.FORMAT == "BGR"
        # detectron2 labels are 0..K-1 in the order of the sorted category ids (load_coco_json's mapping).
        self._category_of_label = {i: cat["id"] for i, cat in enumerate(categories)}

    def predict(self, image_path: Path, image_id: int, score_threshold: float) -> list[dict[str, Any]]:
        """COCO results for one image, best score first."""
        return self.predict_batch([decode(Path(image_path))], [image_id], score_threshold)[0]

    @torch.inference_mode()
    def predict_batch(self, images: Sequence[np.ndarray], image_ids: Sequence[int],
                      score_threshold: float) -> list[list[dict[str, Any]]]:
        """COCO results per image (best score first), all images in one forward pass."""
        inputs = [self._input(image) for image in images]
        # The model drops boxes under its own threshold before NMS; align it with the caller's.
        self.model.roi_heads.box_predictor.test_score_thresh = score_threshold
        with torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            outputs = self.model(inputs)
        results = []
        for output, image_id in zip(outputs, image_ids):
            instances = output["instances"].to("cpu")
            results.append(coco_results(image_id, instances.pred_boxes.tensor.float().numpy(),
                                        instances.scores.float().numpy(), instances.pred_classes.numpy(),
                                        instances.pred_masks.numpy(), self._category_of_label, score_threshold))
        return results

    def _input(self, image: np.ndarray) -> dict[str, Any]:
        # detectron2's DefaultPredictor preprocessing: channel order, shortest-edge resize, CHW.
        if self._bgr:
            image = image[:, :, ::-1]
        height, width = image.shape[:2]
        resized = self._resize.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)), dtype=torch.float32)
        return {"image": tensor, "height": height, "width": width}


def load_predictor(checkpoint: Path, device: str = "auto") -> Detectron2Predictor:
    """Rebuild the model from the config stored in `checkpoint` and load its weights."""
    path = Path(checkpoint)
    state = open_checkpoint(path, NAME)
    config = Config.model_validate(state["config"])
    config.train.gpus = 1  # one process predicts: plain BatchNorm layers, same weights as SyncBN ones
    categories = list(state["categories"])
    cfg = build_cfg(config, len(categories), str(resolve_device(device, field="device")))
    model = build_model(cfg)
    model.load_state_dict(state["model"])
    return Detectron2Predictor(model, cfg, categories)
