"""Reading a plate: its characters row by row, each row left to right along the plate's own axis.

Shared by the EIR metric (evaluate) and the drawn reports (test), so that what the report shows
is exactly what the metric scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


def plate_axis(points: np.ndarray) -> np.ndarray:
    """Unit vector along the plate's long side, pointing rightwards (x >= 0).

    `points` are (N, 2) x/y coordinates: a polygon's vertices or a mask's pixels. The principal
    axis of their spread is the long side of a plate, however it is rotated.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 2:
        return np.array([1.0, 0.0])
    centered = pts - pts.mean(axis=0)
    _, vectors = np.linalg.eigh(centered.T @ centered)
    axis = vectors[:, -1]  # eigenvector of the largest eigenvalue
    if axis[0] < 0 or (axis[0] == 0 and axis[1] < 0):
        axis = -axis
    return axis / np.linalg.norm(axis)


def inside_polygon(polygon: Sequence[float], x: float, y: float) -> bool:
    """Even-odd rule point-in-polygon for a flat [x0, y0, x1, y1, ...] list."""
    xs, ys = polygon[0::2], polygon[1::2]
    inside = False
    j = len(xs) - 1
    for i in range(len(xs)):
        if (ys[i] > y) != (ys[j] > y):
            cross_x = xs[i] + (y - ys[i]) * (xs[j] - xs[i]) / (ys[j] - ys[i])
            if x < cross_x:
                inside = not inside
        j = i
    return inside


def inside_mask(mask: np.ndarray, x: float, y: float) -> bool:
    """Whether the pixel under (x, y) is set in a boolean H x W mask."""
    col, row = int(x), int(y)
    return 0 <= row < mask.shape[0] and 0 <= col < mask.shape[1] and bool(mask[row, col])


class Glyph(NamedTuple):
    """A character known to lie inside a plate: its label, box centre and box size."""

    label: str
    x: float
    y: float
    width: float
    height: float


def glyph(label: str, bbox: Sequence[float]) -> Glyph:
    """The Glyph of a COCO `[x, y, w, h]` box."""
    x, y, w, h = (float(v) for v in bbox)
    return Glyph(label, x + w / 2, y + h / 2, w, h)


# Two characters whose centres lie further apart across the plate than this share of a
# character's size are on different rows: a row's own wobble stays well under it, the next
# row's centres are a whole character height or more away.
ROW_GAP = 0.6


def rows(plate_points: np.ndarray, characters: Sequence[Glyph]) -> list[list[Glyph]]:
    """The characters in rows, top row first, each left to right along the plate's axis.

    Rows are told apart across the axis: sorted by their centres' offset across it, a gap wider
    than ROW_GAP of the median character size (its box's extent across the axis) starts a new
    row. A one-row plate is one row, however rotated.
    """
    if not characters:
        return []
    axis = plate_axis(plate_points)
    across = np.array([-axis[1], axis[0]])  # the axis turned a quarter clockwise: down the plate
    extent = float(np.median([abs(across[0]) * c.width + abs(across[1]) * c.height for c in characters]))
    ordered = sorted(characters, key=lambda c: float(np.dot(across, (c.x, c.y))))
    grouped = [[ordered[0]]]
    for before, char in zip(ordered, ordered[1:]):
        if float(np.dot(across, (char.x - before.x, char.y - before.y))) > ROW_GAP * extent:
            grouped.append([])
        grouped[-1].append(char)
    return [sorted(row, key=lambda c: float(np.dot(axis, (c.x, c.y)))) for row in grouped]


def read_string(plate_points: np.ndarray, characters: Sequence[Glyph]) -> str:
    """The plate's reading: its rows top to bottom, each read left to right along the plate axis
    (a 2-row plate "12AB" over "34567" reads "12AB34567"). `characters` are already known to lie
    inside the plate."""
    return "".join(char.label for row in rows(plate_points, characters) for char in row)
