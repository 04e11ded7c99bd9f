"""Geometry of labelme shapes: outlines as COCO polygons, areas, and points kept inside the image.

Coordinates are COCO's continuous ones: the image covers [0, width] x [0, height].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from steps.datasets.labelme import LabelmeShape

Point = tuple[float, float]
Polygon = list[float]  # flat [x0, y0, x1, y1, ...]

# Shapes that enclose an area; the others (line, point, ...) cannot be an instance mask.
AREA_SHAPES = ("polygon", "rectangle", "oriented_rectangle", "circle", "mask")
# A circle becomes a regular polygon whose edges stray at most this far (px) from the circle.
CIRCLE_MAX_GAP = 0.5
CIRCLE_MIN_POINTS = 16


def polygon_area(polygon: Polygon) -> float:
    """Shoelace formula; absolute, so either winding order counts."""
    xs, ys = polygon[0::2], polygon[1::2]
    twice = sum(xs[i] * ys[(i + 1) % len(xs)] - xs[(i + 1) % len(xs)] * ys[i] for i in range(len(xs)))
    return abs(twice) / 2.0


def flat(points: list[Point]) -> Polygon:
    return [float(v) for point in points for v in point]


def circle_points(center: Point, edge: Point) -> list[Point]:
    """A regular polygon inscribed in the circle, fine enough that no edge strays > CIRCLE_MAX_GAP."""
    (cx, cy), (ex, ey) = center, edge
    radius = math.hypot(ex - cx, ey - cy)
    count = CIRCLE_MIN_POINTS
    if radius > CIRCLE_MAX_GAP:
        # An edge of a regular n-gon strays r * (1 - cos(pi / n)) from the circle at its middle.
        count = max(count, math.ceil(math.pi / math.acos(1 - CIRCLE_MAX_GAP / radius)))
    angles = (2 * math.pi * k / count for k in range(count))
    return [(round(cx + radius * math.cos(a), 2), round(cy + radius * math.sin(a), 2)) for a in angles]


def outline(shape: LabelmeShape, points: list[Point] | None = None) -> list[Point]:
    """The outline of an area shape (polygon, rectangle, oriented rectangle, circle) as points.

    `points` replaces the shape's own (e.g. after clipping); a 2-point rectangle becomes 4 corners.
    """
    points = list(shape.points if points is None else points)
    if shape.shape_type == "rectangle" and len(points) == 2:
        (x0, y0), (x1, y1) = points
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if shape.shape_type == "circle":
        return circle_points(points[0], points[1])
    return points


def clamp(points: list[Point], width: int, height: int) -> list[Point]:
    return [(min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))) for x, y in points]


@dataclass(frozen=True)
class PointCheck:
    """Where a shape's points lie with respect to the image."""

    finite: bool
    # How far (px) the farthest point lies outside the image; 0 when all are inside.
    overshoot: float
    # Points outside the image.
    outside: int


def check_points(points: list[Point], width: int, height: int) -> PointCheck:
    if not all(math.isfinite(v) for point in points for v in point):
        return PointCheck(False, math.inf, len(points))
    overshoot, outside = 0.0, 0
    for x, y in points:
        far = max(-x, x - width, -y, y - height, 0.0)
        if far > 0:
            outside += 1
            overshoot = max(overshoot, far)
    return PointCheck(True, overshoot, outside)


def distinct_points(polygon: Polygon) -> int:
    return len(set(zip(polygon[0::2], polygon[1::2])))
