"""A COCO instance-segmentation split as Mask R-CNN training samples.

Reads `<split>.json` (COCO: images, annotations with polygon or RLE segmentations, categories)
and yields (uint8 image tensor, target) pairs with xyxy boxes, contiguous labels 1..K and binary masks.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from steps.errors import InputError
from steps.datasets.image_decode import load_rgb
from steps.masks import decode, polygons_to_mask


@dataclass(frozen=True)
class CocoSplit:
    """One parsed split: images that have usable annotations, plus the category list."""

    path: Path
    image_dir: Path
    categories: list[dict[str, Any]]
    images: list[dict[str, Any]]
    annotations: dict[int, list[dict[str, Any]]]  # image id -> usable annotations

    @property
    def label_of(self) -> dict[int, int]:
        """COCO category id -> contiguous model label (1..K; 0 is background)."""
        return {cat["id"]: i + 1 for i, cat in enumerate(self.categories)}


def load_image(path: Path) -> Image.Image:
    """RGB image as annotators saw it, decoded as record decodes it (steps/datasets/image_decode.py)."""
    try:
        return load_rgb(path)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # TooManyPixels, Unfaithful are ValueErrors
        raise InputError(f"{path}: cannot read image ({exc})") from None


def read_split(dataset_dir: Path, split: str = "train") -> CocoSplit:
    """Parse and check `<dataset_dir>/<split>.json`; keep images with at least one usable object."""
    path = Path(dataset_dir) / f"{split}.json"
    if not path.is_file():
        raise InputError(f"{path}: not found; the train step needs the record step's COCO dataset folder")
    try:
        data = json.loads(path.read_text())
        categories = sorted(data["categories"], key=lambda c: c["id"])
        images = data["images"]
        annotations = data["annotations"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a COCO instance-segmentation file ({exc!r})") from None
    if not categories:
        raise InputError(f"{path}: `categories` is empty; nothing to train")
    known = {cat["id"] for cat in categories}
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in annotations:
        try:
            category, (x, y, w, h), image_id = ann["category_id"], ann["bbox"], ann["image_id"]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: annotation {ann.get('id') if isinstance(ann, dict) else ann!r} lacks category_id, bbox [x, y, w, h] or image_id") from None
        if category not in known:
            raise InputError(f"{path}: annotation {ann.get('id')} has unknown category_id {category}")
        # Crowd regions and zero-area boxes cannot be Mask R-CNN targets.
        if ann.get("iscrowd", 0) or w <= 0 or h <= 0:
            continue
        by_image.setdefault(image_id, []).append(ann)
    image_dir = path.parent / "images"
    kept = [img for img in images if img["id"] in by_image]
    missing = [img["file_name"] for img in kept if not _image_path(image_dir, path.parent, img).is_file()]
    if missing:
        raise InputError(f"{path}: {len(missing)} image file(s) missing, e.g. {missing[:3]} (looked under {image_dir})")
    return CocoSplit(path, image_dir, categories, kept, by_image)


def _image_path(image_dir: Path, root: Path, image: dict[str, Any]) -> Path:
    # `file_name` may be relative to images/ (usual) or to the dataset folder (`images/x.jpg`).
    candidate = image_dir / image["file_name"]
    return candidate if candidate.is_file() else root / image["file_name"]


class CocoSegmentationDataset(torch.utils.data.Dataset):
    """Indexed by (image index, sample seed); the seed decides the flip, so augmentation is the
    same whatever the worker count or resume point."""

    def __init__(self, split: CocoSplit, hflip: float = 0.0) -> None:
        self.split = split
        self.hflip = hflip
        self._label_of = split.label_of

    def __len__(self) -> int:
        return len(self.split.images)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        index, sample_seed = key
        info = self.split.images[index]
        path = _image_path(self.split.image_dir, self.split.path.parent, info)
        image = load_image(path)
        width, height = image.size
        if (info.get("width"), info.get("height")) not in ((width, height), (None, None)):
            raise InputError(
                f"{self.split.path}: image {info['file_name']} is {width}x{height} but the JSON says "
                f"{info.get('width')}x{info.get('height')}; re-record the dataset"
            )
        anns = self.split.annotations[info["id"]]
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns], dtype=torch.float32)
        labels = torch.tensor([self._label_of[a["category_id"]] for a in anns], dtype=torch.int64)
        masks = torch.from_numpy(np.stack([_mask(a["segmentation"], height, width) for a in anns]).astype(np.uint8))
        # uint8, a quarter of float32's bytes through the loader's shared memory and on to the GPU;
        # `to_model_input` makes it the [0, 1] floats the model takes, on the device.
        tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)  # a writable copy
        if self.hflip > 0 and random.Random(sample_seed).random() < self.hflip:
            tensor = tensor.flip(-1)
            masks = masks.flip(-1)
            boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)
        target = {"boxes": boxes, "labels": labels, "masks": masks, "image_id": torch.tensor(info["id"])}
        return tensor, target


def to_model_input(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A sample's uint8 CHW image as the float CHW image in [0, 1] torchvision's models take."""
    return image.to(device, non_blocking=True).float().div_(255)


def _mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    # COCO segmentations are polygon lists, or RLE dicts (e.g. converted from masks).
    if isinstance(segmentation, dict):
        return decode(segmentation)
    return polygons_to_mask(segmentation, height, width)


def collate(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Detection models take lists (images differ in size), not stacked tensors."""
    images, targets = zip(*batch)
    return list(images), list(targets)
