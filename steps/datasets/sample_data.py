"""A synthetic license-plate dataset in labelme format, for demos, smoke runs and tests.

Each image gets 1-2 plates (light rectangle, dark border, 4-5 dark digits; a quarter of them
with a second, smaller row of 2 digits above) at a random position, size and modest rotation
over a noisy background with distractor shapes. Annotations: one `plate` polygon per plate (its
4 rotated corners; the string, rows top to bottom, in the shape's `description`) and one polygon
per character (label = the character, the rotated box around its glyph). Everything comes from a seeded numpy generator, so a seed gives byte-identical files.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Digits only: 11 classes with the plate, few and large enough that a from-scratch model trained
# for a few CPU minutes starts reading plates (18 classes of smaller glyphs read none).
ALPHABET = "0123456789"
CHARS_PER_PLATE = (4, 5)
# A share of the plates has two rows: a smaller code of TOP_ROW_CHARS over the number. The truth
# (and EIR) reads them row by row: "12" over "3456" is "123456" (steps/metrics/plates.py).
TWO_ROW_SHARE = 0.25
TOP_ROW_CHARS = 2
TOP_ROW_SCALE = 0.7
# Plates per image, and a plate's font size as a share of the image's shorter side: at 0.18-0.28
# (digits 30-49 px tall in 320x240) the demo's CPU model reads about half the plates after 400
# iterations; at 0.13-0.22 (22-39 px) it read 1 in 63 (docs/demo.md).
PLATES_PER_IMAGE = (1, 2)
FONT_FRACTION = (0.18, 0.28)
PLATE_LABEL = "plate"
LABELME_VERSION = "5.5.0"

_PLATE_COLORS = ((245, 245, 240), (250, 228, 110), (232, 240, 250))
_MAX_ANGLE = 25.0  # degrees, either way
_EDGE = 3.0  # plates keep this many pixels from the image border and from each other

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in plate-local pixels


@dataclass(frozen=True)
class _Plate:
    image: Image.Image  # RGBA, upright
    text: str
    char_boxes: list[Box]


@dataclass(frozen=True)
class _Placement:
    center: tuple[float, float]
    angle: float  # radians

    def to_image(self, plate: _Plate, x: float, y: float) -> tuple[float, float]:
        """Plate-local point -> image point: rotate about the plate center, then move it."""
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        dx, dy = x - plate.image.width / 2, y - plate.image.height / 2
        return (self.center[0] + cos * dx - sin * dy, self.center[1] + sin * dx + cos * dy)

    def corners(self, plate: _Plate, box: Box) -> list[tuple[float, float]]:
        x0, y0, x1, y1 = box
        return [self.to_image(plate, x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _background(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    width, height = size
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    direction = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = xs * math.cos(direction) + ys * math.sin(direction)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    pixels = start + ramp[..., None] * (end - start)
    pixels += rng.normal(0, rng.uniform(4, 18), pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):  # distractors: things that are not plates
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, x1 = sorted(rng.uniform(0, width, 2))
        y0, y1 = sorted(rng.uniform(0, height, 2))
        kind = int(rng.integers(4))
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=color)
        elif kind == 1:
            draw.ellipse((x0, y0, x1, y1), fill=color)
        elif kind == 2:
            draw.line((x0, y0, x1, y1), fill=color, width=int(rng.integers(1, 6)))
        else:
            points = [(float(rng.uniform(0, width)), float(rng.uniform(0, height))) for _ in range(3)]
            draw.polygon(points, fill=color)
    return image


def _glyphs(text: str, font_size: int) -> list[Image.Image]:
    """Each character's ink, cropped (measured from the ink itself, not font metrics)."""
    font = _font(font_size)
    glyphs = []
    for char in text:
        canvas = Image.new("L", (font_size * 2, font_size * 2), 0)
        ImageDraw.Draw(canvas).text((font_size // 2, font_size // 2), char, font=font, fill=255)
        glyphs.append(canvas.crop(canvas.getbbox()))
    return glyphs


def _row_width(glyphs: list[Image.Image], gap: int) -> int:
    return sum(glyph.width for glyph in glyphs) + gap * (len(glyphs) - 1)


def _render_plate(rng: np.random.Generator, text: str, font_size: int, top: str = "") -> _Plate:
    """Draw the plate upright: one row of `text`, or a 2-row plate with the smaller `top` row
    centred above it (as older plates carry a region or class code over the number)."""
    glyphs = _glyphs(text, font_size)
    ink_height = max(glyph.height for glyph in glyphs)
    gap = max(3, round(0.14 * font_size))
    border = max(2, round(0.05 * ink_height * 1.7))
    margin = border + max(3, round(0.3 * ink_height))
    width = 2 * margin + _row_width(glyphs, gap)
    height = round(ink_height * 1.7)
    upper = _glyphs(top, max(8, round(font_size * TOP_ROW_SCALE))) if top else []
    if upper:
        upper_height = max(glyph.height for glyph in upper)
        row_gap = round(0.25 * ink_height)
        height += upper_height + row_gap

    jitter = rng.integers(-8, 9, 3)
    base = _PLATE_COLORS[int(rng.integers(len(_PLATE_COLORS)))]
    fill = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(base, jitter)) + (255,)
    ink = tuple(int(c) for c in rng.integers(0, 50, 3)) + (255,)
    edge = tuple(int(c) for c in rng.integers(10, 70, 3)) + (255,)

    plate = Image.new("RGBA", (width, height), fill)
    draw = ImageDraw.Draw(plate)
    draw.rectangle((0, 0, width - 1, height - 1), outline=edge, width=border)
    boxes: list[Box] = []

    def row(glyphs: list[Image.Image], x: int, top_edge: int, row_height: int) -> None:
        for glyph in glyphs:  # each glyph centred in its row's height
            y = top_edge + (row_height - glyph.height) // 2
            plate.paste(Image.new("RGBA", glyph.size, ink), (x, y), glyph)
            boxes.append((x - 1.0, y - 1.0, x + glyph.width + 1.0, y + glyph.height + 1.0))
            x += glyph.width + gap

    if upper:
        top_margin = (round(ink_height * 1.7) - ink_height) // 2
        row(upper, (width - _row_width(upper, gap)) // 2, top_margin, upper_height)
        row(glyphs, margin, top_margin + upper_height + row_gap, ink_height)
    else:
        row(glyphs, margin, 0, height)
    return _Plate(plate, top + text, boxes)


def _fits(corners: list[tuple[float, float]], size: tuple[int, int], taken: list[Box]) -> bool:
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    box = (min(xs) - _EDGE, min(ys) - _EDGE, max(xs) + _EDGE, max(ys) + _EDGE)
    if box[0] < 0 or box[1] < 0 or box[2] > size[0] or box[3] > size[1]:
        return False
    # Axis-aligned boxes of the rotated plates must not meet: conservative, so plates never touch.
    return all(box[2] <= t[0] or t[2] <= box[0] or box[3] <= t[1] or t[3] <= box[1] for t in taken)


def _place(rng: np.random.Generator, plate: _Plate, size: tuple[int, int], taken: list[Box]) -> _Placement | None:
    for _ in range(40):
        placement = _Placement(
            center=(float(rng.uniform(0, size[0])), float(rng.uniform(0, size[1]))),
            angle=math.radians(float(rng.uniform(-_MAX_ANGLE, _MAX_ANGLE))),
        )
        corners = placement.corners(plate, (0, 0, plate.image.width, plate.image.height))
        if _fits(corners, size, taken):
            xs, ys = [p[0] for p in corners], [p[1] for p in corners]
            taken.append((min(xs) - _EDGE, min(ys) - _EDGE, max(xs) + _EDGE, max(ys) + _EDGE))
            return placement
    return None


def _paste(image: Image.Image, plate: _Plate, placement: _Placement) -> Image.Image:
    # Inverse of _Placement.to_image, as PIL's affine transform maps output pixels to input ones.
    cos, sin = math.cos(placement.angle), math.sin(placement.angle)
    (cx, cy), half_w, half_h = placement.center, plate.image.width / 2, plate.image.height / 2
    data = (cos, sin, half_w - cos * cx - sin * cy, -sin, cos, half_h + sin * cx - cos * cy)
    layer = plate.image.transform(image.size, Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR)
    return Image.alpha_composite(image, layer)


def _shape(label: str, points: list[tuple[float, float]], description: str = "") -> dict[str, object]:
    return {
        "label": label,
        "points": [[round(x, 2), round(y, 2)] for x, y in points],
        "group_id": None,
        "description": description,
        "shape_type": "polygon",
        "flags": {},
    }


def _one_image(rng: np.random.Generator, size: tuple[int, int],
               layout: np.random.Generator) -> tuple[Image.Image, list[dict[str, object]]]:
    """`layout` decides which plates have two rows (its own stream: a 1-row image is drawn with
    the same numbers whatever the share of 2-row plates)."""
    image = _background(rng, size).convert("RGBA")
    shapes: list[dict[str, object]] = []
    taken: list[Box] = []
    short_side = min(size)
    for number in range(int(rng.integers(PLATES_PER_IMAGE[0], PLATES_PER_IMAGE[1] + 1))):
        text = "".join(rng.choice(list(ALPHABET), int(rng.integers(CHARS_PER_PLATE[0], CHARS_PER_PLATE[1] + 1))))
        top = "".join(layout.choice(list(ALPHABET), TOP_ROW_CHARS)) if layout.random() < TWO_ROW_SHARE else ""
        font_size = max(12, round(short_side * rng.uniform(*FONT_FRACTION)))
        placement = None
        while placement is None:
            plate = _render_plate(rng, text, font_size, top)
            placement = _place(rng, plate, size, taken)
            if placement is None and number > 0:
                break  # a second plate is optional; the first one shrinks until it fits
            if placement is None and font_size <= 8:
                raise ValueError(f"image_size {size} is too small to hold a plate")
            font_size = max(8, round(font_size * 0.8))
        if placement is None:
            break
        image = _paste(image, plate, placement)
        full = (0.0, 0.0, float(plate.image.width), float(plate.image.height))
        shapes.append(_shape(PLATE_LABEL, placement.corners(plate, full), description=plate.text))
        for char, box in zip(plate.text, plate.char_boxes):
            shapes.append(_shape(char, placement.corners(plate, box)))
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    pixels += rng.normal(0, rng.uniform(1, 5), pixels.shape)  # sensor noise over plates too
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"), shapes


def generate_sample(
    out_dir: Path, num_images: int = 40, seed: int = 0, image_size: tuple[int, int] = (320, 240)
) -> list[Path]:
    """Write `plate_NNNN.jpg` + `plate_NNNN.json` pairs into `out_dir`; return the JSON paths.

    `image_size` is (width, height). Image i depends only on (seed, i), so a larger
    `num_images` adds images without changing the earlier ones.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(num_images):
        rng = np.random.default_rng([seed, index])
        image, shapes = _one_image(rng, image_size, np.random.default_rng([seed, index, 1]))
        stem = f"plate_{index:04d}"
        # Encoded in memory, then written: PIL writing to a file ignores a failed write (a full disk
        # gives a truncated JPEG and no error), Python's own write raises.
        encoded = io.BytesIO()
        image.save(encoded, format="JPEG", quality=92)
        (out_dir / f"{stem}.jpg").write_bytes(encoded.getvalue())
        document = {
            "version": LABELME_VERSION,
            "flags": {},
            "shapes": shapes,
            "imagePath": f"{stem}.jpg",
            "imageData": None,
            "imageHeight": image_size[1],
            "imageWidth": image_size[0],
        }
        json_path = out_dir / f"{stem}.json"
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        written.append(json_path)
    return written
