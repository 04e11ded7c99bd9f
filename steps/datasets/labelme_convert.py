"""One labelme file -> its COCO image and instances, with every check a file must pass.

This is the unit of work that runs in parallel (one call per file, in worker processes), so it
takes and returns plain picklable values and never raises for bad input: problems come back as
messages, `errors` (the file cannot be used) or `warnings` (a shape was left out or clipped).
Images are not decoded: the size comes from the header, unless `decode_images` asks for more.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import UnidentifiedImageError

from steps.confine import IsNotRegular, regular_file
from steps.errors import ExternalError
from steps.datasets.image_decode import TRANSPOSING, TooManyPixels, faithful_problem, needs_rewriting, open_image, orientation

try:  # pycocotools' rasterizer, bit for bit (in Rust), for area and bbox from the mask
    import hotcoco.mask as coco_mask
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ExternalError("labelme -> COCO needs hotcoco: pip install 'hotcoco>=1.3'") from exc

from steps.datasets.labelme import (
    RESERVED_LABELS,
    LabelmeFile,
    LabelmeFormatError,
    LabelmeShape,
    embedded_image,
    image_file,
    image_name,
    parse_labelme,
    read_file,
)
from steps.datasets.labelme_shapes import (
    AREA_SHAPES,
    Polygon,
    check_points,
    clamp,
    distinct_points,
    flat,
    outline,
    polygon_area,
)
from steps.masks import encode

_FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp"}


@dataclass(frozen=True)
class ConvertSettings:
    # Known labels (a labels file or dataset.labels); None: any label is a category.
    labels: tuple[str, ...] | None = None
    # Where `labels` came from, for messages.
    labels_source: str = "dataset.labels"
    # Points at most this many pixels outside the image are clipped (with a warning); farther is an error.
    clip_tolerance: float = 2.0
    # Decode every image fully (slower) instead of trusting its header and end marker.
    decode_images: bool = False
    # The annotation folder: no file outside it is read. None: each JSON file's own folder.
    root: Path | None = None
    # SHA-256 of each image (the record step stores it); hashing is ~10% of a conversion.
    hash_images: bool = True
    # A file with more objects is invalid: each becomes a full-image mask in training.
    max_instances: int = 1000


@dataclass(frozen=True)
class ImageSource:
    """Where an image's bytes come from, for copying it into a dataset."""

    json_path: Path
    # The image file; None when the image is embedded in the JSON (imageData).
    path: Path | None
    sha256: str | None  # None when ConvertSettings.hash_images is off
    # The file is not stored as shown (an EXIF orientation) or has 16-bit samples: datasets get it
    # decoded as every step decodes it (steps/datasets/image_decode.py), upright and 8-bit.
    rewrite: bool = False


@dataclass(frozen=True)
class Instance:
    label: str
    # COCO polygons, or an RLE dict when a labelme `mask` shape is part of the instance.
    segmentation: list[Polygon] | dict[str, Any]
    area: int
    bbox: list[float]


@dataclass(frozen=True)
class ConvertedFile:
    json_path: Path
    file_name: str = ""
    width: int = 0
    height: int = 0
    source: ImageSource | None = None
    instances: tuple[Instance, ...] = ()
    # Shapes in the file (all types).
    num_shapes: int = 0
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Parts:
    label: str
    polygons: list[Polygon] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)


def convert_file(json_path: Path, settings: ConvertSettings = ConvertSettings()) -> ConvertedFile:
    """Check one labelme file and turn it into COCO instances; never raises for bad input."""
    json_path = Path(json_path)
    try:
        labelme = parse_labelme(read_file(json_path, settings.root or json_path.parent))
        embedded = embedded_image(labelme)
    except OSError as exc:
        return ConvertedFile(json_path, errors=(f"cannot be read: {exc.strerror or exc}",))
    except LabelmeFormatError as exc:
        return ConvertedFile(json_path, errors=(str(exc),))

    image = _read_image(json_path, labelme, embedded, settings)
    if isinstance(image, str):
        return ConvertedFile(json_path, errors=(image,))
    source, name = image
    warnings: list[str] = []
    errors: list[str] = []
    parts = _instance_parts(labelme, settings, warnings, errors)
    if len(parts) > settings.max_instances:
        errors.append(f"has {len(parts):,} objects, more than dataset.max_instances_per_image ({settings.max_instances:,}); "
                      "each is a full-image mask in training: split the image's annotation, or raise the limit")
    if errors:
        return ConvertedFile(json_path, errors=tuple(errors))
    instances = []
    for number, instance in enumerate(_rasterize(parts, labelme.imageHeight, labelme.imageWidth), start=1):
        if instance.area == 0:
            warnings.append(f"instance {number} ({instance.label!r}) covers no pixel center; skipped")
            continue
        instances.append(instance)
    return ConvertedFile(
        json_path=json_path,
        file_name=name,
        width=labelme.imageWidth,
        height=labelme.imageHeight,
        source=source,
        instances=tuple(instances),
        num_shapes=len(labelme.shapes),
        warnings=tuple(warnings),
    )


def _read_image(
    json_path: Path, labelme: LabelmeFile, embedded: bytes | None, settings: ConvertSettings
) -> tuple[ImageSource, str] | str:
    """(source, COCO file name), or the reason the image is unusable."""
    path, facts = None, None
    if embedded is None:
        try:
            path = image_file(json_path, labelme, settings.root or json_path.parent)
            regular_file(path)
            if not (settings.hash_images or settings.decode_images):
                facts = _jpeg_facts(path)
            data = b"" if facts else path.read_bytes()
        except LabelmeFormatError as exc:
            return str(exc)
        except FileNotFoundError:
            return (f"image {labelme.imagePath!r} not found (looked for {path}); "
                    "put the image beside the JSON or fix imagePath")
        except IsNotRegular as exc:
            return f"image {labelme.imagePath!r} {exc}, not an image file"
        except OSError as exc:
            return f"image {labelme.imagePath!r} cannot be read: {exc.strerror or exc}"
    else:
        data = embedded
    what = "the embedded image (imageData)" if path is None else f"image {labelme.imagePath!r}"
    if facts is None:
        try:
            facts = _image_facts(data, settings.decode_images)
        except UnidentifiedImageError:
            return f"{what} is not an image file PIL can read"
        except TooManyPixels as exc:
            return f"{what} {exc}"
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            return f"{what} cannot be decoded ({exc}); copy or export the file again"
    if facts.unfaithful:
        return f"{what} {facts.unfaithful}"
    if facts.truncated:
        return f"{what} is truncated (no end marker); copy the file again"
    width, height, turn = facts.width, facts.height, facts.turn
    upright = (height, width) if turn in TRANSPOSING else (width, height)
    declared = (labelme.imageWidth, labelme.imageHeight)
    if upright != declared:
        hint = "re-open and save the file in labelme"
        if turn in TRANSPOSING and (width, height) == declared:
            hint = ("the image has an EXIF rotation that the annotation ignored (labelme applies it); "
                    "annotate it in labelme or save the image upright")
        rotated = " once rotated as its EXIF says" if upright != (width, height) else ""
        return (f"imageWidth x imageHeight is {declared[0]}x{declared[1]} but {what} is "
                f"{upright[0]}x{upright[1]}{rotated}; {hint}")
    name = image_name(labelme) or f"{json_path.stem}{_FORMAT_SUFFIX.get(facts.format, '.png')}"
    digest = hashlib.sha256(data).hexdigest() if settings.hash_images else None
    source = ImageSource(json_path, path, digest, rewrite=facts.rewrite)
    return source, name


@dataclass(frozen=True)
class _ImageFacts:
    """What the checks need to know of an image file, from its header (and end)."""

    format: str
    width: int
    height: int
    turn: int  # EXIF orientation
    unfaithful: str | None  # why its pixels have no faithful 8-bit form
    rewrite: bool  # stored otherwise than shown: datasets get it decoded
    truncated: bool
    header_bytes: int  # how far into the file its header went


def _image_facts(data: bytes, decode: bool = False) -> _ImageFacts:
    """_ImageFacts of a whole image file (or of its first bytes: see _jpeg_facts); PIL's errors,
    TooManyPixels, when it cannot be read."""
    with open_image(data) as opened:
        header_bytes = opened.fp.tell() if opened.fp is not None else len(data)
        fmt, (width, height) = opened.format or "", opened.size
        turn = orientation(opened, data)
        unfaithful = faithful_problem(opened)
        rewrite = needs_rewriting(opened, turn)
        if decode:
            opened.load()
    return _ImageFacts(fmt, width, height, turn, unfaithful, rewrite, _truncated(fmt, data), header_bytes)


# A JPEG keeps what the checks read (size, pixel mode, EXIF orientation) in the header before its
# image data, and its end marker in its last bytes: where no digest or decoding is asked for, a
# conversion reads those only (600 photos of 400 kB: a quarter of the CPU time of the conversion).
_HEAD_BYTES = 64 * 1024
_TAIL_BYTES = 16 * 1024


def _jpeg_facts(path: Path) -> _ImageFacts | None:
    """_ImageFacts of a large JPEG file from its first and last bytes; None where they do not
    tell (another format, a header longer than _HEAD_BYTES, the end padded with NULs, anything
    PIL refuses): the caller then judges the whole file, errors and all."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size <= _HEAD_BYTES + _TAIL_BYTES:
            return None
        head = file.read(_HEAD_BYTES)
        if not head.startswith(b"\xff\xd8"):  # not a JPEG
            return None
        file.seek(size - _TAIL_BYTES)
        tail = file.read()
    try:
        facts = _image_facts(head)
    except Exception:  # noqa: BLE001 - judged again on the whole file, which names the error
        return None
    if facts.format != "JPEG" or facts.header_bytes >= len(head) or len(tail.rstrip(b"\x00")) < _TRUNCATION_WINDOW:
        return None
    return dataclasses.replace(facts, truncated=_truncated(facts.format, tail))


_TRUNCATION_WINDOW = 4096  # the end marker is looked for in the last bytes but NULs


def _truncated(fmt: str, data: bytes) -> bool:
    """A cheap check for cut-off files (interrupted copies), without decoding."""
    tail = data.rstrip(b"\x00")[-_TRUNCATION_WINDOW:]
    if fmt == "JPEG":
        return b"\xff\xd9" not in tail  # end-of-image; some cameras append data after it
    if fmt == "PNG":
        return b"IEND" not in tail[-64:]
    return False


def _instance_parts(
    labelme: LabelmeFile, settings: ConvertSettings, warnings: list[str], errors: list[str]
) -> list[_Parts]:
    """The shapes of each instance, in the order of each instance's first shape."""
    instances: dict[tuple[str, int], _Parts] = {}
    width, height = labelme.imageWidth, labelme.imageHeight
    for index, shape in enumerate(labelme.shapes):
        where = f"shape {index} ({shape.label!r})"
        if not shape.label.strip():
            errors.append(f"shape {index} has an empty label; name it in labelme")
            continue
        if shape.label in RESERVED_LABELS:
            warnings.append(f"{where} skipped: labelme's reserved label is not an object")
            continue
        if shape.shape_type not in AREA_SHAPES:
            warnings.append(f"{where} skipped: a {shape.shape_type} has no area")
            continue
        if settings.labels is not None and shape.label not in settings.labels:
            errors.append(
                f"shape {index} has label {shape.label!r}, which is not in {settings.labels_source} "
                f"({', '.join(settings.labels)}); add it there or fix the label"
            )
            continue
        check = check_points(shape.points, width, height)
        if not check.finite:
            errors.append(f"{where} has a coordinate that is not a finite number; redraw it in labelme")
            continue
        if check.overshoot > settings.clip_tolerance:
            errors.append(
                f"{where} has {check.outside} point(s) up to {check.overshoot:.1f} px outside the "
                f"{width}x{height} image (tolerance {settings.clip_tolerance:g} px); "
                "fix the points or imageWidth/imageHeight"
            )
            continue
        if check.outside:
            warnings.append(
                f"{where}: {check.outside} point(s) up to {check.overshoot:.1f} px outside the image, clipped"
            )
        points = clamp(shape.points, width, height) if check.outside else shape.points
        # Shapes sharing a group_id and label are the parts of one object (e.g. an occluded one).
        key = (shape.label, shape.group_id) if shape.group_id is not None else (shape.label, -1 - index)
        part = instances.setdefault(key, _Parts(shape.label))
        if shape.shape_type == "mask":
            mask = _mask_of(shape, width, height, settings.clip_tolerance)
            if isinstance(mask, str):
                errors.append(f"{where} {mask}")
            else:
                part.masks.append(mask)
            continue
        shape_outline = outline(shape, points)
        if check.outside or shape.shape_type == "circle":  # only a circle leaves the image from points inside it
            shape_outline = clamp(shape_outline, width, height)
        polygon = flat(shape_outline)
        distinct = distinct_points(polygon)
        if distinct < 3 or polygon_area(polygon) == 0:
            errors.append(
                f"{where} encloses no area ({distinct} distinct points"
                f"{', inside the image' if check.outside else ''}); delete it or redraw it in labelme"
            )
            continue
        part.polygons.append(polygon)
    return [part for part in instances.values() if part.polygons or part.masks]


def _mask_of(shape: LabelmeShape, width: int, height: int, clip_tolerance: float) -> np.ndarray | str:
    """The full-image boolean mask of a labelme `mask` shape (a PNG patch placed at its box's corner)."""
    import base64
    import binascii

    if not shape.mask:
        return "is a mask shape without its mask; redraw it in labelme"
    try:
        with open_image(base64.b64decode(shape.mask, validate=True)) as patch_image:
            # The patch covers the box of 2 points inside the image (or up to the clip tolerance
            # outside it), so it is no larger than the image and that margin: check before decoding.
            slack = 2 * min(clip_tolerance, max(width, height)) + 2
            if patch_image.width > width + slack or patch_image.height > height + slack:
                return (f"has a {patch_image.width}x{patch_image.height} mask, larger than the {width}x{height} "
                        "image; redraw it in labelme")
            patch = np.asarray(patch_image.convert("L")) > 0
    except TooManyPixels as exc:
        return f"has a mask that {exc}"
    except (binascii.Error, ValueError, OSError, UnidentifiedImageError, SyntaxError, EOFError):
        return "has a mask that is not a base64 PNG; redraw it in labelme"
    # The patch starts at the box's top-left corner, unclipped (it may start outside the image).
    x0, y0 = (int(round(min(point[axis] for point in shape.points))) for axis in (0, 1))
    full = np.zeros((height, width), dtype=bool)
    rows = slice(max(y0, 0), min(y0 + patch.shape[0], height))
    cols = slice(max(x0, 0), min(x0 + patch.shape[1], width))
    if rows.start < rows.stop and cols.start < cols.stop:
        full[rows, cols] = patch[rows.start - y0 : rows.stop - y0, cols.start - x0 : cols.stop - x0]
    return full


def _rasterize(parts: list[_Parts], height: int, width: int) -> list[Instance]:
    """Area and box from each instance's mask, as COCO tools rasterize the segmentation written.

    One mask a call: a long list would start hotcoco's thread pool, which a process forked after
    it (steps.parallel's workers) lacks.
    """
    instances = []
    for part in parts:
        pieces = [coco_mask.fr_poly(polygon, height, width) for polygon in part.polygons]
        pieces += [encode(mask) for mask in part.masks]
        rle = pieces[0] if len(pieces) == 1 else coco_mask.merge(pieces)
        segmentation: list[Polygon] | dict[str, Any] = part.polygons
        if part.masks:  # COCO has no polygon+mask mix: the instance becomes one RLE
            counts = rle["counts"]
            text = counts.decode("ascii") if isinstance(counts, bytes) else str(counts)
            segmentation = {"size": [height, width], "counts": text}
        box = coco_mask.to_bbox(rle)
        instances.append(Instance(part.label, segmentation, int(coco_mask.area(rle)), [float(v) for v in box]))
    return instances
