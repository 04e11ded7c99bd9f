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
    if isinstance(counts, list):
        if any(run < 0 for run in counts) or sum(counts) != height * width:
            raise ValueError(f"its runs cover {sum(counts)} pixels (or go negative), not height x width = {height * width}")
        return
    if isinstance(counts, str) and not counts.isascii():
        raise ValueError(f"the counts string is malformed at character {next(i for i, c in enumerate(counts) if not c.isascii())}")
    runs = _runs(counts.encode("ascii") if isinstance(counts, str) else counts)
    total = int(runs.sum())
    if (runs < 0).any() or total != height * width:
        raise ValueError(f"its runs cover {total} pixels (or go negative), not height x width = {height * width}")


def invalid_rles(rles: Sequence[RLE]) -> np.ndarray:
    """Boolean per RLE with compressed counts (str or bytes): True where `check_rle` would refuse it.

    The same checks as `check_rle`, on all the RLEs of a result file at once: a file holds tens of
    thousands, and per-RLE array calls would cost more than the evaluation. `check_rle` on the
    first refused one gives the message.
    """
    count = len(rles)
    invalid = np.zeros(count, dtype=bool)
    texts = []
    for i, rle in enumerate(rles):
        counts = rle["counts"]
        if isinstance(counts, str):
            invalid[i] = not counts.isascii()
            counts = counts.encode("ascii", "replace")
        texts.append(counts)
    pixels = np.array([int(h) * int(w) for h, w in (rle["size"] for rle in rles)], dtype=np.int64)
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    codes = np.frombuffer(b"".join(texts), dtype=np.uint8) - np.uint8(48)  # uint8: wraps below '0'
    if not codes.size:
        return invalid | (pixels != 0)
    text_ends = np.cumsum(lengths)
    bad = np.flatnonzero(codes >= 64)
    if bad.size:
        invalid[np.searchsorted(text_ends, bad, side="right")] = True
    last = codes < 32  # bit 0x20 clear: the last character of a number
    ends = text_ends[lengths > 0] - 1
    invalid[np.flatnonzero(lengths > 0)[~last[ends]]] = True  # ends inside a number
    last[ends] = True  # so that no number runs on into the next RLE
    group_ends = np.flatnonzero(last)
    group_starts = np.concatenate(([0], group_ends[:-1] + 1))
    group_lengths = group_ends - group_starts + 1
    # The value of each number, one digit position at a time (most numbers have one or two).
    values = (codes[group_starts] & 0x1F).astype(np.int64)
    for k in range(1, min(int(group_lengths.max()), 13)):
        longer = np.flatnonzero(group_lengths > k)
        values[longer] |= (codes[group_starts[longer] + k] & 0x1F).astype(np.int64) << (5 * k)
    negative = (codes[group_ends] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * np.minimum(group_lengths[negative], 12))
    numbers_before = np.concatenate(([0], np.cumsum(last)))
    groups = numbers_before[text_ends] - numbers_before[text_ends - lengths]  # numbers per RLE
    owner = np.repeat(np.arange(count), groups)
    invalid[owner[group_lengths > 12]] = True
    # Undo the deltas as _runs does: running sums over odd positions and over even ones from the
    # third on, each restarted at every RLE.
    first = np.cumsum(groups) - groups
    first_seen = np.minimum(first, values.size - 1)  # an RLE without numbers owns none: any index
    position = np.arange(values.size) - first[owner]
    odd = (position & 1).astype(bool)
    runs = values
    for chosen in (odd, ~odd & (position >= 2)):
        part = np.where(chosen, values, 0)
        sums = np.cumsum(part)
        before = (sums - part)[first_seen]
        runs = np.where(chosen, sums - before[owner], runs)
    invalid[owner[runs < 0]] = True
    totals = np.zeros(count, dtype=np.int64)
    totals[groups > 0] = np.add.reduceat(runs, first[groups > 0])
    return invalid | (totals != pixels)


def _runs(text: bytes) -> np.ndarray:
    # COCO's compressed counts: each run a little-endian base-32 varint in characters 48..111
    # (bit 0x20: more follows; 0x10 in the last: negative), stored from the third on as the
    # difference to the run two before. Decoded with array operations: a result file holds
    # hundreds of thousands of characters per image, too many for a Python loop per character.
    codes = np.frombuffer(text, dtype=np.uint8).astype(np.int64) - 48
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    bad = np.flatnonzero((codes < 0) | (codes >= 64))
    if bad.size:
        raise ValueError(f"the counts string is malformed at character {int(bad[0])}")
    last = (codes & 0x20) == 0  # the last character of each number
    if not last[-1]:
        raise ValueError("the counts string ends inside a number")
    ends = np.flatnonzero(last)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > 12:  # past 60 bits: no real run is that long, and int64 would overflow
        raise ValueError(f"the counts string is malformed at character {int(starts[lengths.argmax()] + 12)}")
    shifts = 5 * (np.arange(codes.size) - np.repeat(starts, lengths))
    values = np.add.reduceat((codes & 0x1F) << shifts, starts)
    negative = (codes[ends] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * lengths[negative])
    # run[i] = value[i] + run[i - 2] for i > 2: running sums over odd positions and over even
    # positions from the third run on.
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
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
