"""Indexing a COCO ground truth and the predictions made on it, with friendly errors.

Every metric walks images one by one and looks annotations up by category name; this module
does that bookkeeping once and checks that predictions refer to images and categories that exist.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from steps.errors import ConfigError, InputError, excerpt
from steps.image_limits import MAX_PIXELS
from steps.masks import RLE, check_rle, segmentation_to_rle, valid_rle_areas


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
    check_results(results, {i: (image.height, image.width) for i, image in images.items()}, names.keys(), needs)
    for res in results:
        images[int(res["image_id"])].predictions.append(res)
    return Dataset(names, images)


def check_results(
    results: list[dict[str, Any]],
    image_sizes: Mapping[int, tuple[int, int]],
    category_ids: Iterable[int],
    needs: tuple[str, ...] = (),
    unread: tuple[str, ...] = (),
    positions: Sequence[int] | None = None,
    rle_areas: Mapping[int, int] | None = None,
) -> None:
    """Raise InputError naming the first prediction that does not fit the ground truth.

    Every field the metrics read is checked here, so a bad file is one line naming the item and
    the field, never a traceback from the C evaluators: ids are integers of the ground truth, the
    score a finite number, a bbox four finite numbers with width and height >= 0, a segmentation
    an RLE (checked by decoding its size) or polygons. Fields named in `unread` are not checked:
    the caller drops them unread (bbox AP never looks at a segmentation). `positions`: where each
    result stands in the caller's whole file, for the messages (default: its index here).
    `rle_areas`: what `rle_areas_of(results)` returned for this very list, when the caller has it
    (it decodes every RLE); the RLEs it names are taken as checked.
    """
    known_categories = set(category_ids)
    required = ("image_id", "category_id", "score", *needs)
    if "segmentation" in unread:
        rle_areas = {}
    elif rle_areas is None:
        rle_areas = rle_areas_of(results)
    good_rles = rle_areas.keys()
    if _all_good(results, image_sizes, known_categories, required, unread, good_rles):
        return
    for i, res in enumerate(results):
        where = f"predictions[{i if positions is None else positions[i]}]"
        if not isinstance(res, dict):
            raise InputError(f"{where}: expected an object with image_id, category_id, score, got {excerpt(res)}")
        missing = [key for key in required if key not in res]
        if missing:
            raise InputError(f"{where}: missing {', '.join(missing)} (have {excerpt(', '.join(sorted(map(str, res))), 200)})")
        if not _is_int(res["image_id"]) or res["image_id"] not in image_sizes:
            raise InputError(
                f"{where}: image_id {excerpt(res['image_id'])} is not an image of the ground truth; "
                "evaluate predictions made on the same split"
            )
        if not _is_int(res["category_id"]) or res["category_id"] not in known_categories:
            raise InputError(
                f"{where}: category_id {excerpt(res['category_id'])} is not a category of the ground truth "
                f"(ids: {excerpt(sorted(known_categories), 200)}); the model and dataset labels differ"
            )
        if not _is_number(res["score"]):
            raise InputError(f"{where}: score {excerpt(res['score'])} is not a finite number")
        if "bbox" in res and "bbox" not in unread:
            check_bbox(res["bbox"], f"{where}.bbox")
        if "segmentation" in res and "segmentation" not in unread:
            check_segmentation(res["segmentation"], f"{where}.segmentation", image_sizes[res["image_id"]],
                               runs_checked=i in good_rles)


def _all_good(results: list[Any], image_sizes: Mapping[int, tuple[int, int]], known_categories: set[int],
              required: tuple[str, ...], unread: tuple[str, ...], good_rles: Collection[int]) -> bool:
    """True when every result passes check_results' loop, judged a field at a time over all.

    The common case, a good file of tens of thousands of predictions, costs a few set and array
    operations instead of a Python check per number. False means "maybe not": the loop then
    finds the first bad item and names it. Polygon segmentations and run-length lists always go
    to the loop.
    """
    if not results:
        return True
    if set(map(type, results)) != {dict}:
        return False
    optional = [key for key in ("bbox", "segmentation") if key not in unread and key not in required]
    present = [key for key in optional if key in results[0]]
    absent = [key for key in optional if key not in present]
    if absent and any(key in res for res in results for key in absent):
        return False  # on some results only
    try:
        columns = {key: [res[key] for res in results] for key in (*required, *present)}
    except KeyError:
        return False  # missing from some
    image_ids, category_ids, scores = columns["image_id"], columns["category_id"], columns["score"]
    if not (set(map(type, image_ids)) <= {int} and set(image_ids) <= image_sizes.keys()
            and set(map(type, category_ids)) <= {int} and set(category_ids) <= known_categories
            and _finite(scores)):
        return False
    if "bbox" in columns and not _boxes_good(columns["bbox"]):
        return False
    if "segmentation" in columns:
        segmentations = columns["segmentation"]
        if set(map(type, segmentations)) != {dict} or len(good_rles) != len(results):
            return False  # polygons, run lists or an RLE rle_areas_of did not pass
        as_lists = {i: list(size) for i, size in image_sizes.items()}
        if [seg["size"] for seg in segmentations] != [as_lists[i] for i in image_ids]:
            return False  # one of another size, or given as a tuple: the loop judges it
    return True


def _annotations_good(annotations: list[Any], sizes: Mapping[int, tuple[int, int]], categories: set[int]) -> bool:
    """True when every ground-truth annotation passes check_ground_truth's loop, judged a field
    at a time over all, as _all_good judges results (tens of thousands of objects: a tenth of a
    second of `trainyard coco-eval` in the loop). False means "maybe not": the loop then names
    the first bad one. RLE segmentations (crowds) always go to the loop.
    """
    if not annotations:
        return True
    if set(map(type, annotations)) != {dict}:
        return False
    try:
        image_ids, category_ids = [a["image_id"] for a in annotations], [a["category_id"] for a in annotations]
        ids, boxes = [a["id"] for a in annotations], [a["bbox"] for a in annotations]
    except KeyError:
        return False
    if not (set(map(type, image_ids)) <= {int} and set(image_ids) <= sizes.keys()
            and set(map(type, category_ids)) <= {int} and set(category_ids) <= categories
            and set(map(type, ids)) <= {int} and _boxes_good(boxes)
            and _finite([a["area"] for a in annotations if "area" in a])):
        return False
    segmentations = [a["segmentation"] for a in annotations if "segmentation" in a]
    if not segmentations:
        return True
    if set(map(type, segmentations)) != {list} or not all(segmentations):
        return False
    polygons = [polygon for segmentation in segmentations for polygon in segmentation]
    if set(map(type, polygons)) != {list}:
        return False
    lengths = set(map(len, polygons))
    return min(lengths) >= 6 and not any(n % 2 for n in lengths) and _finite([v for p in polygons for v in p])


def _boxes_good(boxes: list[Any]) -> bool:
    """Every box a list of four finite numbers, width and height >= 0 (what check_bbox asks)."""
    if not (set(map(type, boxes)) <= {list, tuple} and set(map(len, boxes)) == {4}):
        return False
    return (_finite([v for box in boxes for v in box])
            and min(map(itemgetter(2), boxes)) >= 0 and min(map(itemgetter(3), boxes)) >= 0)


def _finite(values: list[Any]) -> bool:
    """All plain ints and floats (not bools), and finite."""
    types = set(map(type, values))
    if types == {float} and math.isfinite(sum(values)):  # a NaN or an infinity would make the sum one
        return True
    if not types <= {int, float}:
        return False
    try:
        return bool(np.isfinite(np.asarray(values, dtype=np.float64)).all())
    except OverflowError:  # an int beyond a double: the loop says which
        return False


def rle_areas_of(results: list[Any]) -> dict[int, int]:
    """{index: mask area} of the results whose compressed RLE has runs `check_rle` accepts.

    All RLEs are checked in one pass (see `valid_rle_areas`); check_results' per-result loop then
    decodes only the others, so the first bad prediction still gets its message.
    """
    where, rles = [], []
    for i, res in enumerate(results):
        seg = res.get("segmentation") if isinstance(res, dict) else None
        if isinstance(seg, dict) and isinstance(seg.get("counts"), (str, bytes)) and _is_size_fast(seg.get("size")):
            where.append(i)
            rles.append(seg)
    return {i: area for i, area in zip(where, valid_rle_areas(rles)) if area is not None}


def _is_size_fast(size: Any) -> bool:
    """_is_size, with the common case (a list of two plain ints) judged without calls."""
    if type(size) is list and len(size) == 2:
        height, width = size
        if type(height) is int and type(width) is int:
            return 0 < height < 2**31 and 0 < width < 2**31
    return _is_size(size)


def _is_size(size: Any) -> bool:
    return isinstance(size, (list, tuple)) and len(size) == 2 and all(_is_int(v) and 0 < v < 2**31 for v in size)


def check_masks_present(gt: dict[str, Any]) -> None:
    """Mask AP matches predictions against every object's mask, as pycocotools does."""
    for i, ann in enumerate(gt.get("annotations", [])):
        if not isinstance(ann, dict) or "segmentation" not in ann:
            raise InputError(f"annotations[{i}]: no segmentation; segm AP needs every object's mask "
                             "(bbox AP does not)")


def check_ground_truth(gt: Any, masks: bool = False) -> None:
    """Raise InputError naming the first part of a COCO ground truth the metrics cannot read;
    with `masks`, also an object without a segmentation (what segm AP needs)."""
    if not isinstance(gt, dict) or not all(isinstance(gt.get(key), list) for key in ("images", "annotations", "categories")):
        raise InputError("not a COCO ground truth: needs lists images, annotations and categories")
    sizes = _image_sizes_if_good(gt["images"])
    if sizes is None:
        sizes = _image_sizes(gt["images"])
    categories = set()
    for i, cat in enumerate(gt["categories"]):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise InputError(f"categories[{i}]: needs an integer id and a name, got {excerpt(cat)}")
        categories.add(cat["id"])
    if _annotations_good(gt["annotations"], sizes, categories):
        annotations = []  # nothing for the loop below to name
    else:
        annotations = gt["annotations"]
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise InputError(f"{where}: expected an object, got {excerpt(ann)}")
        if ann.get("image_id") not in sizes or not _is_int(ann.get("image_id")):
            raise InputError(f"{where}: image_id {excerpt(ann.get('image_id'))} is not in images")
        if ann.get("category_id") not in categories or not _is_int(ann.get("category_id")):
            raise InputError(f"{where}: category_id {excerpt(ann.get('category_id'))} is not in categories")
        if not _is_int(ann.get("id")):
            raise InputError(f"{where}: needs an integer id, got {excerpt(ann.get('id'))}")
        check_bbox(ann.get("bbox"), f"{where}.bbox")
        if "area" in ann and not _is_number(ann["area"]):
            raise InputError(f"{where}.area: {excerpt(ann['area'])} is not a finite number")
        if "segmentation" in ann:
            check_segmentation(ann["segmentation"], f"{where}.segmentation", sizes[ann["image_id"]])
    if masks:
        check_masks_present(gt)


def _image_sizes(images: list[Any]) -> dict[int, tuple[int, int]]:
    """{id: (height, width)} of the ground truth's images; InputError naming the first bad one."""
    sizes: dict[int, tuple[int, int]] = {}
    for i, img in enumerate(images):
        fields = (img.get("id"), img.get("height"), img.get("width")) if isinstance(img, dict) else (None,)
        if not all(_is_int(v) for v in fields) or min(fields[1:]) <= 0:
            raise InputError(f"images[{i}]: needs an integer id, height and width (> 0), got {excerpt(img)}")
        if img["height"] * img["width"] > MAX_PIXELS:  # its masks alone would not fit in memory
            raise InputError(f"images[{i}]: declares a {excerpt(img['width'], 20)}x{excerpt(img['height'], 20)} "
                             f"image, more than {MAX_PIXELS:,} pixels (the most any step decodes); fix its size")
        if img["id"] in sizes:  # which image would its annotations and predictions be on?
            raise InputError(f"images[{i}]: id {img['id']} is already the id of an earlier image; ids must be unique")
        sizes[img["id"]] = (img["height"], img["width"])
    return sizes


def _image_sizes_if_good(images: list[Any]) -> dict[int, tuple[int, int]] | None:
    """_image_sizes judged a field at a time over all images; None means "maybe not": the loop
    then names the first bad one."""
    if not images:
        return {}
    if set(map(type, images)) != {dict}:
        return None
    try:
        ids, heights, widths = [i["id"] for i in images], [i["height"] for i in images], [i["width"] for i in images]
    except KeyError:
        return None
    if not (set(map(type, ids)) | set(map(type, heights)) | set(map(type, widths))) <= {int}:
        return None
    if min(heights) <= 0 or min(widths) <= 0 or max(map(int.__mul__, heights, widths)) > MAX_PIXELS:
        return None
    sizes = dict(zip(ids, zip(heights, widths)))
    return sizes if len(sizes) == len(images) else None


def check_bbox(bbox: Any, where: str) -> None:
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not _all_numbers(bbox):
        raise InputError(f"{where}: expected [x, y, width, height] of four finite numbers, got {excerpt(bbox)}")
    if bbox[2] < 0 or bbox[3] < 0:
        raise InputError(f"{where}: width and height must be >= 0, got {excerpt(bbox)} ([x, y, width, height], not corners)")


def check_segmentation(segmentation: Any, where: str, image_size: tuple[int, int], runs_checked: bool = False) -> None:
    """An RLE of the image's size whose runs cover it exactly, or a list of polygons.

    `runs_checked`: the caller has already checked the runs of this RLE (see `rle_areas_of`).
    """
    if isinstance(segmentation, dict):
        size, counts = segmentation.get("size"), segmentation.get("counts")
        if not _is_size(size) or list(size) != list(image_size):  # ints: the C mask code casts them
            raise InputError(f"{where}: RLE size {excerpt(size)} is not the image's [height, width] {list(image_size)}")
        if not isinstance(counts, (str, bytes)) and not (isinstance(counts, list) and all(_is_int(v) and v >= 0 for v in counts)):
            raise InputError(f"{where}: RLE counts must be a COCO string or a list of run lengths, got {excerpt(counts)}")
        if runs_checked and not isinstance(counts, list):
            return
        try:
            check_rle(segmentation)
        except ValueError as exc:
            raise InputError(f"{where}: not a valid RLE: {exc}") from None
        return
    polygons_ok = isinstance(segmentation, list) and segmentation and all(
        isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and _all_numbers(p) for p in segmentation
    )
    if not polygons_ok:
        raise InputError(
            f"{where}: expected an RLE object or a list of polygons [[x1, y1, x2, y2, x3, y3, ...]], got {excerpt(segmentation)}"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _all_numbers(values: list[Any] | tuple[Any, ...]) -> bool:
    """Every value a finite number (not a bool): one C pass for the common case, plain ints and
    floats of a finite sum, else a look at each."""
    if set(map(type, values)) <= {int, float}:
        try:
            if math.isfinite(sum(values)):
                return True
        except OverflowError:  # an int beyond any double
            pass
    return all(_is_number(v) for v in values)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any double (JSON allows 4,300 digits)
        return False


def by_category(items: Iterable[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        grouped[int(item["category_id"])].append(item)
    return grouped
