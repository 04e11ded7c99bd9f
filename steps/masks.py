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


def check_rle(rle: RLE) -> None:
    """ValueError unless the runs of `rle` cover exactly its height x width pixels.

    The C mask code trusts its input (a run past the end, a truncated string): RLEs from files are
    checked here first. O(length of the counts), no mask is allocated.
    """
    height, width = rle["size"]
    counts = rle["counts"]
    runs = counts if isinstance(counts, list) else _runs(counts.decode("ascii", "replace") if isinstance(counts, bytes) else counts)
    if any(run < 0 for run in runs) or sum(runs) != height * width:
        raise ValueError(f"its runs cover {sum(runs)} pixels (or go negative), not height x width = {height * width}")


def _runs(text: str) -> list[int]:
    # COCO's compressed counts: each run a little-endian base-32 varint in characters 48..111
    # (bit 0x20: more follows; 0x10 in the last: negative), stored from the third on as the
    # difference to the run two before.
    runs: list[int] = []
    pos = 0
    while pos < len(text):
        value = shift = 0
        while True:
            if pos >= len(text):
                raise ValueError("the counts string ends inside a number")
            code = ord(text[pos]) - 48
            if not 0 <= code < 64 or shift > 60:
                raise ValueError(f"the counts string is malformed at character {pos}")
            value |= (code & 0x1F) << shift
            pos, shift = pos + 1, shift + 5
            if not code & 0x20:
                if code & 0x10:
                    value |= -1 << shift
                break
        runs.append(value + runs[-2] if len(runs) > 2 else value)
    return runs


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
