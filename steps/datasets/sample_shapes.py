"""A second synthetic labelme dataset, unlike the plates: coloured shapes of 12 classes.

`trainyard sample-data --kind shapes` writes it, and the end-to-end tests run the whole pipeline
on it, so that nothing in the pipeline quietly depends on plates: no `plate` class, more classes
than the plate set (3 colours x 4 shapes), rectangles annotated as labelme `rectangle` shapes
and the others as polygons, objects of several sizes that may touch the border.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from steps.datasets.sample_data import LABELME_VERSION

COLOURS = {"red": (210, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 210)}
SHAPES = ("square", "bar", "triangle", "disc")  # square and bar: labelme rectangles; the others: polygons
CLASSES = [f"{colour}-{shape}" for colour in COLOURS for shape in SHAPES]


def _outline(shape: str, cx: float, cy: float, size: float) -> tuple[str, list[tuple[float, float]]]:
    """The labelme shape type and points of one object centred at (cx, cy)."""
    if shape == "square":
        return "rectangle", [(cx - size, cy - size), (cx + size, cy + size)]
    if shape == "bar":
        return "rectangle", [(cx - size * 1.6, cy - size * 0.5), (cx + size * 1.6, cy + size * 0.5)]
    if shape == "triangle":
        return "polygon", [(cx, cy - size), (cx + size, cy + size * 0.8), (cx - size, cy + size * 0.8)]
    return "polygon", [(cx + size * math.cos(a), cy + size * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 16, endpoint=False)]


def _one_image(rng: np.random.Generator, size: tuple[int, int], index: int) -> tuple[Image.Image, list[dict[str, object]]]:
    width, height = size
    shade = int(rng.integers(150, 235))
    image = Image.new("RGB", size, (shade, shade, shade - 10))
    draw = ImageDraw.Draw(image)
    shapes: list[dict[str, object]] = []
    taken: list[tuple[float, float, float]] = []
    for number in range(int(rng.integers(2, 5))):
        label = CLASSES[(index * 3 + number) % len(CLASSES)]  # every class within the first few images
        colour, shape = label.split("-")
        radius = float(rng.uniform(0.08, 0.2) * min(size))
        for _attempt in range(20):  # objects do not overlap, so every mask is what was drawn
            half_width = radius * (1.6 if shape == "bar" else 1.0)
            cx, cy = float(rng.uniform(half_width, width - half_width)), float(rng.uniform(radius, height - radius))
            if all(math.hypot(cx - x, cy - y) > (radius + r) * 1.7 for x, y, r in taken):
                break
        else:
            continue
        taken.append((cx, cy, radius))
        kind, points = _outline(shape, cx, cy, radius)
        fill = tuple(int(c + rng.integers(-25, 26)) for c in COLOURS[colour])
        if kind == "rectangle":
            draw.rectangle([points[0], points[1]], fill=fill)
        else:
            draw.polygon(points, fill=fill)
        shapes.append({"label": label, "points": [[round(x, 2), round(y, 2)] for x, y in points], "group_id": None,
                       "description": "", "shape_type": kind, "flags": {}})
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 3, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"), shapes


def generate_shapes(out_dir: Path, num_images: int = 40, seed: int = 0, image_size: tuple[int, int] = (160, 120)) -> list[Path]:
    """Write `shapes_NNNN.jpg` + `.json` labelme pairs into `out_dir`; return the JSON paths.
    Image i depends only on (seed, i)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(num_images):
        image, shapes = _one_image(np.random.default_rng([seed, index]), image_size, index)
        stem = f"shapes_{index:04d}"
        image.save(out_dir / f"{stem}.jpg", format="JPEG", quality=92)
        document = {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": f"{stem}.jpg",
                    "imageData": None, "imageHeight": image_size[1], "imageWidth": image_size[0]}
        path = out_dir / f"{stem}.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        written.append(path)
    return written
