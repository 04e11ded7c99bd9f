"""Indexing a COCO ground truth and the predictions made on it, with friendly errors.

Every metric walks images one by one and looks annotations up by category name; this module
does that bookkeeping once and checks that predictions refer to images and categories that exist.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from steps.errors import ConfigError, InputError
from steps.masks import RLE, segmentation_to_rle


@dataclass
class Image:
    """One image: its ground-truth annotations and the predictions made on it."""

    id: int
    height: int
    width: int
    annotations: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)

    def rle(self, item: dict[str, Any]) -> RLE:
        """The item's segmentation as a compressed RLE (ground-truth polygons are rasterised)."""
        return segmentation_to_rle(item["segmentation"], self.height, self.width)


@dataclass
class Dataset:
    """Ground truth and predictions grouped by image; `names` maps category id -> name."""

    names: dict[int, str]
    images: dict[int, Image]

    def category_ids(self, names: Iterable[str], field_name: str) -> set[int]:
        """Ids of the given category names; an unknown name is a configuration error."""
        by_name = {name: cid for cid, name in self.names.items()}
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise ConfigError(
                f"{field_name}: {', '.join(map(repr, unknown))} is not a category of the dataset "
                f"(categories: {', '.join(sorted(by_name))})"
            )
        return {by_name[name] for name in names}


def index(gt: dict[str, Any], results: list[dict[str, Any]], needs: tuple[str, ...] = ()) -> Dataset:
    """Group non-crowd ground truth and `results` by image.

    `needs` are keys every result must have (e.g. "segmentation"). Crowd annotations are left out:
    the datasets here never have them and the custom metrics do not define their meaning.
    """
    names = {int(c["id"]): str(c["name"]) for c in gt.get("categories", [])}
    images = {
        int(img["id"]): Image(int(img["id"]), int(img["height"]), int(img["width"]))
        for img in gt.get("images", [])
    }
    for ann in gt.get("annotations", []):
        if not ann.get("iscrowd", 0):
            images[int(ann["image_id"])].annotations.append(ann)
    check_results(results, images.keys(), names.keys(), needs)
    for res in results:
        images[int(res["image_id"])].predictions.append(res)
    return Dataset(names, images)


def check_results(
    results: list[dict[str, Any]],
    image_ids: Iterable[int],
    category_ids: Iterable[int],
    needs: tuple[str, ...] = (),
) -> None:
    """Raise InputError naming the first prediction that does not fit the ground truth."""
    known_images, known_categories = set(image_ids), set(category_ids)
    required = ("image_id", "category_id", "score", *needs)
    for i, res in enumerate(results):
        missing = [key for key in required if key not in res]
        if missing:
            raise InputError(f"predictions[{i}]: missing {', '.join(missing)} (have {', '.join(sorted(res))})")
        if res["image_id"] not in known_images:
            raise InputError(
                f"predictions[{i}]: image_id {res['image_id']} is not an image of the ground truth; "
                "evaluate predictions made on the same split"
            )
        if res["category_id"] not in known_categories:
            raise InputError(
                f"predictions[{i}]: category_id {res['category_id']} is not a category of the ground truth "
                f"(ids: {sorted(known_categories)}); the model and dataset labels differ"
            )


def by_category(items: Iterable[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        grouped[int(item["category_id"])].append(item)
    return grouped
