"""Binary masks <-> COCO run-length encoding, polygons -> masks, mask IoU.

Built on faster-coco-eval's C mask API (pycocotools-compatible), so masks encoded here are
byte-for-byte what pycocotools writes, without pycocotools at run time.

Pixel convention (COCO's): pixel (row r, column c) covers [c, c+1) x [r, r+1), so its centre is
(c + 0.5, r + 0.5) in polygon coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from faster_coco_eval.core import mask as _coco_mask

RLE = dict[str, Any]


def encode(mask: np.ndarray) -> RLE:
    """Compressed COCO RLE of a boolean H x W mask: {"size": [h, w], "counts": str}."""
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"encode expects an H x W mask, got shape {array.shape}")
    rle = _coco_mask.encode(np.asfortranarray(array, dtype=np.uint8))
    return _as_text(rle)


def decode(rle: RLE) -> np.ndarray:
    """Boolean H x W mask of a COCO RLE (compressed counts as str or bytes, or uncompressed list)."""
    return _coco_mask.decode(_compressed(rle)).astype(bool)


def polygons_to_rle(polygons: Sequence[Sequence[float]], height: int, width: int) -> RLE:
    """One compressed RLE covering all COCO polygons ([[x0, y0, x1, y1, ...], ...])."""
    # The C rasteriser needs at least 3 points per polygon; shorter ones cover nothing.
    usable = [[float(v) for v in poly] for poly in polygons if len(poly) >= 6]
    if not usable:
        return encode(np.zeros((height, width), dtype=bool))
    return _as_text(_coco_mask.merge(_coco_mask.frPyObjects(usable, height, width)))


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Rasterise COCO polygons exactly as COCO evaluation does."""
    return decode(polygons_to_rle(polygons, height, width))


def segmentation_to_rle(segmentation: Any, height: int, width: int) -> RLE:
    """Compressed RLE of a COCO `segmentation` field: a polygon list or an RLE dict."""
    if isinstance(segmentation, dict):
        return _compressed(segmentation)
    return polygons_to_rle(segmentation, height, width)


def iou_matrix(detections: Sequence[RLE], ground_truths: Sequence[RLE]) -> np.ndarray:
    """Mask IoU of every detection (rows) with every ground truth (columns)."""
    if not detections or not ground_truths:
        return np.zeros((len(detections), len(ground_truths)))
    ious = _coco_mask.iou(list(detections), list(ground_truths), [0] * len(ground_truths))
    return np.asarray(ious, dtype=np.float64).reshape(len(detections), len(ground_truths))


def _compressed(rle: RLE) -> RLE:
    if isinstance(rle.get("counts"), list):
        # Uncompressed RLE (as pycocotools writes for iscrowd annotations).
        height, width = rle["size"]
        return _coco_mask.frPyObjects(rle, height, width)
    return rle


def _as_text(rle: RLE) -> RLE:
    # JSON needs text; the C API returns bytes.
    counts = rle["counts"]
    text = counts.decode("ascii") if isinstance(counts, bytes) else str(counts)
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": text}
