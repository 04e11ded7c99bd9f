"""Drawing instances onto images: predictions (with read plate strings) and ground truth.

Every size (line widths, fonts, padding) scales with the image's short side, so that a 320x240
thumbnail and a 1333x800 photo both stay readable.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from steps import masks
from steps.reports.outcomes import ImageOutcome

# 20 well-separated colours; a category keeps its colour across images and runs (id-indexed).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
)  # fmt: skip
MATCH_COLOR = (21, 128, 61)  # plate read equals a truth string
MISMATCH_COLOR = (200, 30, 30)  # plate read differs from every truth string
UNKNOWN_COLOR = (30, 64, 175)  # no truth to compare with
MASK_ALPHA = 0.45
PLATE_ALPHA = 0.2  # lighter, so the characters printed on the plate stay readable under it
# Images with a shorter side below this are drawn enlarged by a whole factor (at most MAX_SCALE).
MIN_SHORT_SIDE = 480
MAX_SCALE = 8

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass
class _Instance:
    mask: np.ndarray | None
    box: Box
    color: tuple[int, int, int]
    tag: str
    alpha: float


@dataclass(frozen=True)
class _Style:
    line: int
    small_text: int  # px: tags of small boxes (plate characters) go down to this
    text: int  # px: tags of boxes tall enough
    plate_text: int  # px: the read plate string
    pad: int

    @classmethod
    def for_size(cls, width: int, height: int) -> _Style:
        short = min(width, height)
        return cls(
            line=max(1, round(short / 300)),
            small_text=max(10, round(short / 60)),
            text=max(10, round(short / 30)),
            plate_text=max(14, round(short / 18)),
            pad=max(2, round(short / 250)),
        )

    def tag_font(self, box: Box) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        """Smaller text for smaller boxes, so a row of character tags stays legible."""
        size = min(max(round((box[3] - box[1]) * 0.5), self.small_text), self.text)
        return load_font(size)


@lru_cache(maxsize=32)
def load_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A bold sans font when the system has DejaVu, else Pillow's bundled font, at `size` px."""
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def category_color(category_id: int) -> tuple[int, int, int]:
    return PALETTE[category_id % len(PALETTE)]


def draw_predictions(
    image: Image.Image,
    predictions: list[dict],
    categories: list[dict],
    plate_label: str = "plate",
    plate_reads: list[tuple[dict, str]] | None = None,
    truth_strings: list[str] | None = None,
    outcome: ImageOutcome | None = None,
) -> Image.Image:
    """A copy of `image` with COCO result predictions drawn, and each plate's read string.

    `plate_reads` pairs a plate prediction with the string read inside it. The plate tag is green
    when the read equals one of the image's `truth_strings`, red when it equals none, blue when
    no truth is known (`truth_strings` is None). Masks of the `plate_label` category are drawn
    lighter so that the plate's own characters show through. `outcome` (steps/reports/outcomes.py): each
    tag says TP or FP with its IoU, and each missed object is outlined in red, tagged "missed".
    """
    names = {int(c["id"]): str(c["name"]) for c in categories}
    height, width = image.height, image.width
    verdicts = {id(j.prediction): j for j in outcome.detections} if outcome else {}

    def tag(p: dict) -> str:
        # Two spaces: Pillow's bundled font has a narrow space ("1 0.90" would read "10.90").
        text = f"{_name(names, p['category_id'])}  {float(p.get('score', 0.0)):.2f}"
        judged = verdicts.get(id(p))
        return f"{text}  {judged.outcome} {judged.iou:.2f}" if judged else text

    instances = [
        _Instance(
            mask=_decoded(p.get("segmentation"), height, width),
            box=_xywh_to_box(p["bbox"]),
            color=category_color(int(p["category_id"])),
            tag=tag(p),
            alpha=PLATE_ALPHA if _name(names, p["category_id"]) == plate_label else MASK_ALPHA,
        )
        # Highest score first: its tag gets the first pick of free space.
        for p in sorted(predictions, key=lambda p: -float(p.get("score", 0.0)))
    ]
    instances += [
        _Instance(mask=_decoded(a.get("segmentation"), height, width), box=_xywh_to_box(a["bbox"]),
                  color=MISMATCH_COLOR, tag=f"missed {_name(names, a['category_id'])}", alpha=0.0)
        for a in (outcome.missed if outcome else [])
    ]
    plates = [
        (_xywh_to_box(plate["bbox"]), *_plate_tag(read, truth_strings))
        for plate, read in (plate_reads or [])
    ]
    return _render(image, instances, plates)


def draw_ground_truth(
    image: Image.Image,
    annotations: list[dict],
    categories: list[dict],
    plate_label: str = "plate",
    plate_strings: list[tuple[dict, str]] | None = None,
) -> Image.Image:
    """A copy of `image` with COCO ground-truth annotations (polygons or RLE) drawn.

    `plate_strings` pairs a plate annotation with its true string, drawn in a neutral tag.
    """
    names = {int(c["id"]): str(c["name"]) for c in categories}
    height, width = image.height, image.width
    instances = [
        _Instance(
            mask=_decoded(a.get("segmentation"), height, width),
            box=_xywh_to_box(a["bbox"]),
            color=category_color(int(a["category_id"])),
            tag=_name(names, a["category_id"]),
            alpha=PLATE_ALPHA if _name(names, a["category_id"]) == plate_label else MASK_ALPHA,
        )
        for a in annotations
    ]
    plates = [
        (_xywh_to_box(plate["bbox"]), _display(text), UNKNOWN_COLOR)
        for plate, text in (plate_strings or [])
    ]
    return _render(image, instances, plates)


def _render(
    image: Image.Image,
    instances: list[_Instance],
    plates: list[tuple[Box, str, tuple[int, int, int]]],
) -> Image.Image:
    """Masks, then boxes, then tags; `instances` in the order their tags get to pick a place.

    A small image is drawn enlarged by a whole factor (its pixels stay sharp-edged blocks), so that
    outlines and tags are thin beside its objects instead of covering them."""
    scale = min(MAX_SCALE, max(1, math.ceil(MIN_SHORT_SIDE / max(min(image.size), 1))))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
        instances = [replace(inst, box=_scaled(inst.box, scale),
                             mask=None if inst.mask is None else inst.mask.repeat(scale, axis=0).repeat(scale, axis=1))
                     for inst in instances]
        plates = [(_scaled(box, scale), text, color) for box, text, color in plates]
    style = _Style.for_size(image.width, image.height)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32).copy()
    # Largest box first, so a plate's mask does not veil the characters inside it.
    for inst in sorted(instances, key=lambda i: -_area(i.box)):
        if inst.mask is not None:
            _blend(pixels, inst.mask, np.asarray(inst.color, dtype=np.float32), inst.alpha, style.line)
    canvas = Image.fromarray(pixels.round().astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(canvas)
    for inst in instances:
        draw.rectangle(_clamped(inst.box, canvas.size), outline=inst.color, width=style.line)
    taken: list[Box] = []
    boxes = [inst.box for inst in instances] + [box for box, _, _ in plates]
    # Plate tags first: they matter most, so they get the first pick of free space.
    plate_font = load_font(style.plate_text)
    for box, text, color in plates:
        _tag(draw, canvas.size, box, text, color, plate_font, style.pad * 2, taken, boxes, prefer_below=True)
    # Instance tags only where they cover no other tag and at most a tenth of the image's area
    # in all: at a low score threshold, dozens of tags would otherwise hide the picture. The
    # box and mask keep the class colour, so an untagged instance is still seen.
    budget = 0.1 * canvas.width * canvas.height
    for inst in instances:
        font = style.tag_font(inst.box)
        budget -= _tag(draw, canvas.size, inst.box, inst.tag, inst.color, font, style.pad, taken, boxes,
                       optional=True, budget=budget)
    return canvas


def _scaled(box: Box, scale: int) -> Box:
    return (box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale)


def _blend(pixels: np.ndarray, mask: np.ndarray, color: np.ndarray, alpha: float, outline: int) -> None:
    """Tint `mask`'s pixels towards `color` and outline it, working only in the mask's extent."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    part, region = mask[window], pixels[window]
    region[part] = region[part] * (1 - alpha) + color * alpha
    region[_edge(part, outline)] = color


def _tag(
    draw: ImageDraw.ImageDraw,
    image_size: tuple[int, int],
    box: Box,
    text: str,
    color: tuple[int, int, int],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    pad: int,
    taken: list[Box],
    boxes: list[Box],
    prefer_below: bool = False,
    optional: bool = False,
    budget: float = float("inf"),
) -> float:
    """Draw `text` on a filled tag near `box`, inside the image, off other tags and boxes.

    `optional`: leave the tag out when it would cover another tag or exceed `budget` (pixels).
    Returns the area drawn (0 when left out).
    """
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    size = (right - left + 2 * pad, bottom - top + 2 * pad)
    spot, covers_tags = _place(size, box, image_size, taken, boxes, prefer_below)
    area = float(size[0] * size[1])
    if optional and (covers_tags or area > budget):
        return 0.0
    taken.append(spot)
    draw.rectangle(spot, fill=color)
    ink = (0, 0, 0) if _is_light(color) else (255, 255, 255)
    draw.text((spot[0] + pad - left, spot[1] + pad - top), text, fill=ink, font=font)
    return area


def _place(
    size: tuple[int, int],
    box: Box,
    image_size: tuple[int, int],
    taken: list[Box],
    boxes: list[Box],
    prefer_below: bool,
) -> tuple[Box, bool]:
    """The cheapest spot for a tag, and whether it covers another tag: next to its box, stacked up
    to 4 rows away if need be.

    Covering another tag costs most, then hiding an instance (its own included; a small one
    wholly hidden costs more than a corner of a large one), and each step away from the box
    costs a little, so the nearest free spot wins.
    """
    tag_w, tag_h = size
    x0, y0, x1, y1 = box
    above = [y0 - tag_h * (1 + k) for k in range(4)]
    below = [y1 + 1 + tag_h * k for k in range(4)]
    first, second = (below, above) if prefer_below else (above, below)
    rows = [y for pair in zip(first, second) for y in pair] + [y0]  # last resort: inside
    lefts = [(x0 + x1 - tag_w) / 2, x0, x1 - tag_w] if prefer_below else [x0, (x0 + x1 - tag_w) / 2, x1 - tag_w]
    candidates = [_fit(x, y, tag_w, tag_h, *image_size) for y in rows for x in lefts]

    spots = np.asarray(candidates, dtype=np.float64)
    tag_area = float(tag_w * tag_h)
    covered_tags = _overlap_areas(spots, taken).sum(axis=1) / tag_area
    overlaps = _overlap_areas(spots, boxes)
    areas = np.asarray([max(_area(b), 1.0) for b in boxes])
    hidden = (overlaps / areas).sum(axis=1) if boxes else 0.0
    on_boxes = overlaps.sum(axis=1) / tag_area
    cost = 100 * covered_tags + hidden + 0.3 * on_boxes + 0.05 * np.arange(len(candidates))
    best = int(np.argmin(cost))
    return candidates[best], bool(covered_tags[best] > 0)


def _fit(x: float, y: float, w: int, h: int, width: int, height: int) -> Box:
    """A w x h rectangle at (x, y), moved (not shrunk) to lie inside the image where it fits."""
    x = min(max(x, 0), max(width - w, 0))
    y = min(max(y, 0), max(height - h, 0))
    return (round(x), round(y), round(x) + w - 1, round(y) + h - 1)


def _area(box: Box) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def _overlap_areas(spots: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """Overlap area of every spot (rows) with every box (columns)."""
    if not boxes:
        return np.zeros((len(spots), 0))
    other = np.asarray(boxes, dtype=np.float64)
    width = np.minimum(spots[:, None, 2], other[None, :, 2]) - np.maximum(spots[:, None, 0], other[None, :, 0])
    height = np.minimum(spots[:, None, 3], other[None, :, 3]) - np.maximum(spots[:, None, 1], other[None, :, 1])
    return np.clip(width, 0, None) * np.clip(height, 0, None)


def _is_light(color: tuple[int, int, int]) -> bool:
    red, green, blue = color
    return 0.299 * red + 0.587 * green + 0.114 * blue > 150


def _plate_tag(read: str, truth_strings: list[str] | None) -> tuple[str, tuple[int, int, int]]:
    if truth_strings is None:
        return _display(read), UNKNOWN_COLOR
    if read in truth_strings:
        return f"{_display(read)} / {_display(read)}", MATCH_COLOR
    closest = max(
        truth_strings,
        key=lambda truth: difflib.SequenceMatcher(None, read, truth).ratio(),
        default=None,
    )
    shown_truth = "(no plate)" if closest is None else _display(closest)
    return f"{_display(read)} / {shown_truth}", MISMATCH_COLOR


def _display(text: str) -> str:
    return text if text else "(none)"


def _name(names: dict[int, str], category_id: object) -> str:
    return names.get(int(category_id), f"class {category_id}")  # type: ignore[call-overload]


def _xywh_to_box(bbox: Sequence[float]) -> Box:
    x, y, w, h = (float(v) for v in bbox)
    return (x, y, x + w, y + h)


def _clamped(box: Box, size: tuple[int, int]) -> Box:
    width, height = size
    x0, y0, x1, y1 = box
    return (
        min(max(x0, 0), width - 1),
        min(max(y0, 0), height - 1),
        min(max(x1, 0), width - 1),
        min(max(y1, 0), height - 1),
    )


def _decoded(segmentation: object, height: int, width: int) -> np.ndarray | None:
    """A bool H x W mask of an RLE dict or COCO polygons; None when there is none to draw."""
    if not segmentation:
        return None
    mask = masks.decode(masks.segmentation_to_rle(segmentation, height, width))
    if mask.shape != (height, width):
        raise ValueError(f"a {mask.shape[1]}x{mask.shape[0]} mask cannot be drawn on a {width}x{height} image")
    return mask


def _edge(mask: np.ndarray, thickness: int) -> np.ndarray:
    """Pixels of `mask` within `thickness` of its border (a cheap outline, no OpenCV needed)."""
    inner = mask.copy()
    for _ in range(thickness):
        shrunk = inner.copy()
        shrunk[1:, :] &= inner[:-1, :]
        shrunk[:-1, :] &= inner[1:, :]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return mask & ~inner
