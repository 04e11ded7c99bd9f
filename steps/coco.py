"""labelme files -> a COCO instance-segmentation dataset with a deterministic train/val/test split.

Same inputs give byte-identical output: images are ordered by file name, ids are assigned in that
order, and JSON is written with sorted keys.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from steps.errors import ConfigError, InputError
from steps.labelme import LabelmeFile, LabelmeShape, image_path, load_labelme

SPLITS = ("train", "val", "test")
# Shapes that enclose an area; the others (line, point, ...) cannot be an instance mask.
AREA_SHAPES = ("polygon", "rectangle", "circle")
CIRCLE_POINTS = 32
_EXIF_ORIENTATION = 0x0112

Polygon = list[float]  # flat [x0, y0, x1, y1, ...]


@dataclass
class CocoBuild:
    """Every image and annotation of the input, before the split."""

    images: list[dict[str, Any]]
    annotations: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    # Image file name (as in `images`) -> the source image to copy into the dataset.
    sources: dict[str, Path] = field(default_factory=dict)
    # Shapes that were skipped, one line each (file, shape index, why).
    warnings: list[str] = field(default_factory=list)


def polygon_area(polygon: Polygon) -> float:
    """Shoelace formula; absolute, so either winding order counts."""
    xs, ys = polygon[0::2], polygon[1::2]
    twice = sum(xs[i] * ys[(i + 1) % len(xs)] - xs[(i + 1) % len(xs)] * ys[i] for i in range(len(xs)))
    return abs(twice) / 2.0


def shape_polygon(shape: LabelmeShape) -> Polygon:
    """The outline of a polygon, rectangle or circle shape as a flat COCO polygon."""
    points = shape.points
    if shape.shape_type == "rectangle" and len(points) == 2:
        (x0, y0), (x1, y1) = points
        points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    elif shape.shape_type == "circle":
        (cx, cy), (px, py) = points
        radius = math.hypot(px - cx, py - cy)
        steps = [2 * math.pi * k / CIRCLE_POINTS for k in range(CIRCLE_POINTS)]
        points = [(round(cx + radius * math.cos(a), 2), round(cy + radius * math.sin(a), 2)) for a in steps]
    return [float(v) for point in points for v in point]


def _check_image(json_path: Path, labelme: LabelmeFile, image: Path) -> None:
    """Compare the JSON's image size with the image header (no pixels are decoded)."""
    try:
        with Image.open(image) as opened:
            width, height = opened.size
            orientation = opened.getexif().get(_EXIF_ORIENTATION, 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{json_path}: image {image} cannot be read: {exc}") from None
    if (width, height) == (labelme.imageWidth, labelme.imageHeight):
        return
    hint = "re-open and save the file in labelme"
    if orientation in (5, 6, 7, 8) and (height, width) == (labelme.imageWidth, labelme.imageHeight):
        hint = "the image has an EXIF rotation that labelme applied; save the image upright"
    raise InputError(
        f"{json_path}: imageWidth x imageHeight is {labelme.imageWidth}x{labelme.imageHeight} "
        f"but {image.name} is {width}x{height}; {hint}"
    )


def _instances(json_path: Path, labelme: LabelmeFile, warnings: list[str]) -> list[tuple[str, list[Polygon]]]:
    """(label, polygons) per instance, in the order of each instance's first shape."""
    instances: dict[tuple[str, int], tuple[str, list[Polygon]]] = {}
    for index, shape in enumerate(labelme.shapes):
        if shape.shape_type not in AREA_SHAPES:
            warnings.append(f"{json_path}: shape {index} ({shape.label!r}) skipped: a {shape.shape_type} has no area")
            continue
        polygon = shape_polygon(shape)
        distinct = set(zip(polygon[0::2], polygon[1::2]))
        if len(distinct) < 3 or polygon_area(polygon) == 0:
            raise InputError(
                f"{json_path}: shape {index} ({shape.label!r}) encloses no area "
                f"({len(distinct)} distinct points); delete it or redraw it in labelme"
            )
        # Shapes sharing a group_id and label are the parts of one object (e.g. an occluded one).
        key = (shape.label, shape.group_id) if shape.group_id is not None else (shape.label, -1 - index)
        instances.setdefault(key, (shape.label, []))[1].append(polygon)
    return list(instances.values())


def _annotation(ann_id: int, image_id: int, category_id: int, polygons: list[Polygon]) -> dict[str, Any]:
    xs = [x for polygon in polygons for x in polygon[0::2]]
    ys = [y for polygon in polygons for y in polygon[1::2]]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": polygons,
        "area": sum(polygon_area(polygon) for polygon in polygons),
        "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
        "iscrowd": 0,
    }


def build_coco(files: list[Path], labels: list[str] | None = None) -> CocoBuild:
    """Convert labelme files into COCO images, annotations and categories.

    `labels` fixes the category order (ids 1..N); without it every label found is used, sorted.
    """
    if labels and len(set(labels)) != len(labels):
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        raise ConfigError(f"dataset.labels: {', '.join(map(repr, repeated))} listed more than once")
    warnings: list[str] = []
    loaded = []
    seen: dict[str, Path] = {}
    for json_path in files:
        json_path = Path(json_path)
        labelme = load_labelme(json_path)
        image = image_path(json_path, labelme)
        if image.name in seen:
            raise InputError(
                f"{json_path}: image name {image.name!r} is also used by {seen[image.name]}; "
                "image file names must be unique across the annotations"
            )
        seen[image.name] = json_path
        _check_image(json_path, labelme, image)
        instances = _instances(json_path, labelme, warnings)
        if labels:
            for index, shape in enumerate(labelme.shapes):
                if shape.shape_type in AREA_SHAPES and shape.label not in labels:
                    raise InputError(
                        f"{json_path}: shape {index} has label {shape.label!r}, which is not in "
                        f"dataset.labels ({', '.join(labels)}); add it there or fix the label"
                    )
        loaded.append((image, labelme, instances))

    names = list(labels) if labels else sorted({label for *_, found in loaded for label, _ in found})
    category_ids = {name: number for number, name in enumerate(names, start=1)}
    build = CocoBuild(
        images=[],
        annotations=[],
        categories=[{"id": category_ids[name], "name": name, "supercategory": ""} for name in names],
        warnings=warnings,
    )
    for image_id, (image, labelme, instances) in enumerate(sorted(loaded, key=lambda item: item[0].name), start=1):
        build.images.append(
            {"id": image_id, "file_name": image.name, "width": labelme.imageWidth, "height": labelme.imageHeight}
        )
        build.sources[image.name] = image
        for label, polygons in instances:
            ann_id = len(build.annotations) + 1
            build.annotations.append(_annotation(ann_id, image_id, category_ids[label], polygons))
    return build


def _split_counts(total: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    def count(fraction: float) -> int:
        wanted = math.floor(total * fraction + 0.5)
        return max(wanted, 1) if fraction > 0 and total >= 3 else wanted

    n_val, n_test = count(val_fraction), count(test_fraction)
    while n_val + n_test >= total and n_val + n_test > 0:  # keep at least one training image
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def split_images(image_names: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """Assign each image to train/val/test; independent of input order.

    Images are ranked by a hash of (seed, name): the same names and seed give the same split,
    and adding images later moves few of the existing ones.
    """
    if len(set(image_names)) != len(image_names):
        raise ValueError("split_images: image names must be unique")
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"dataset.val_fraction ({val_fraction}) + dataset.test_fraction ({test_fraction}) "
            "must be >= 0 and add up to less than 1"
        )

    def rank(name: str) -> tuple[str, str]:
        return hashlib.sha256(f"{seed}\0{name}".encode()).hexdigest(), name

    ordered = sorted(image_names, key=rank)
    n_val, n_test = _split_counts(len(ordered), val_fraction, test_fraction)
    split = {name: "test" for name in ordered[:n_test]}
    split.update({name: "val" for name in ordered[n_test : n_test + n_val]})
    split.update({name: "train" for name in ordered[n_test + n_val :]})
    return split


def _coco_dict(build: CocoBuild, image_ids: set[int], images: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        # Some COCO readers (older pycocotools loadRes) expect these keys to exist.
        "info": {"description": "converted from labelme by trainyard"},
        "licenses": [],
        "images": images,
        "annotations": [ann for ann in build.annotations if ann["image_id"] in image_ids],
        "categories": build.categories,
    }


def write_coco_dataset(build: CocoBuild, split: dict[str, str], out_dir: Path) -> dict[str, int]:
    """Write train/val/test.json and images/ into `out_dir`, replacing it as a whole.

    Everything is written into a temporary folder beside `out_dir` first and renamed at the end,
    so a failure leaves the previous `out_dir` (or none) in place, never a half-written one.
    """
    out_dir = Path(out_dir)
    missing = [image["file_name"] for image in build.images if split.get(image["file_name"]) not in SPLITS]
    if missing:
        raise ValueError(f"write_coco_dataset: no train/val/test split for {missing[:3]}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.writing-", dir=out_dir.parent))
    counts: dict[str, int] = {}
    try:
        (staging / "images").mkdir()
        for name in SPLITS:
            images = [image for image in build.images if split[image["file_name"]] == name]
            coco = _coco_dict(build, {image["id"] for image in images}, images)
            (staging / f"{name}.json").write_text(json.dumps(coco, sort_keys=True) + "\n")
            counts[name] = len(images)
        for image in build.images:
            shutil.copyfile(build.sources[image["file_name"]], staging / "images" / image["file_name"])
        _replace_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` to `target`; an existing `target` is swapped out first and then deleted."""
    if not target.exists():
        new.rename(target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    old.rmdir()
    target.rename(old)
    try:
        new.rename(target)
    except BaseException:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
