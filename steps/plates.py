"""Reading a plate: its characters, left to right along the plate's own axis.

Shared by the EIR metric (evaluate) and the drawn reports (test), so that what the report shows
is exactly what the metric scored.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def read_string(plate_points: np.ndarray, characters: Sequence[tuple[str, float, float]]) -> str:
    """Concatenate character labels ordered along the plate axis.

    `characters` are (label, center_x, center_y) of the characters already known to lie inside
    the plate.
    """
    axis = plate_axis(plate_points)
    ordered = sorted(characters, key=lambda c: float(np.dot(axis, (c[1], c[2]))))
    return "".join(label for label, _, _ in ordered)
