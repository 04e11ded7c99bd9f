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

from steps.image_limits import MAX_PIXELS

RLE = dict[str, Any]
# Characters of counts strings valid_rle_areas decodes at a time: a few hundred masks.
CHECK_CHUNK_CHARS = 65536


def _coco_mask() -> Any:
    # Imported at first use: bbox scoring never needs it, and `trainyard coco-eval` starts ~20 ms sooner.
    from faster_coco_eval.core import mask

    return mask


def encode(mask: np.ndarray) -> RLE:
    """Compressed COCO RLE of a boolean H x W mask: {"size": [h, w], "counts": str}."""
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"encode expects an H x W mask, got shape {array.shape}")
    rle = _coco_mask().encode(np.asfortranarray(array, dtype=np.uint8))
    return _as_text(rle)


def decode(rle: RLE) -> np.ndarray:
    """Boolean H x W mask of a COCO RLE (compressed counts as str or bytes, or uncompressed list)."""
    return _coco_mask().decode(_compressed(rle)).astype(bool)


def polygons_to_rle(polygons: Sequence[Sequence[float]], height: int, width: int) -> RLE:
    """One compressed RLE covering all COCO polygons ([[x0, y0, x1, y1, ...], ...])."""
    # The C rasteriser needs at least 3 points per polygon; shorter ones cover nothing.
    usable = [[float(v) for v in poly] for poly in polygons if len(poly) >= 6]
    if not usable:
        return encode(np.zeros((height, width), dtype=bool))
    return _as_text(_coco_mask().merge(_coco_mask().frPyObjects(usable, height, width)))


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
    checked here first. O(length of the counts), no mask is allocated. Compressed counts are
    checked by `invalid_rles`, so one RLE and a whole file are judged alike.
    """
    height, width = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, list):
        if any(run < 0 for run in counts) or sum(counts) != height * width:
            raise ValueError(f"its runs cover {sum(counts)} pixels (or go negative), not height x width = {height * width}")
        return
    if not invalid_rles([rle])[0]:
        return
    if isinstance(counts, str) and not counts.isascii():
        raise ValueError(f"the counts string is malformed at character {next(i for i, c in enumerate(counts) if not c.isascii())}")
    runs = _runs(counts.encode("ascii") if isinstance(counts, str) else counts)  # raises for a malformed string
    raise ValueError(f"its runs cover {int(runs.sum())} pixels (or go negative), not height x width = {height * width}")


def invalid_rles(rles: Sequence[RLE]) -> np.ndarray:
    """Boolean per RLE with compressed counts (str or bytes): True where the runs do not cover
    exactly its height x width pixels, or the counts string is malformed (see `valid_rle_areas`).
    """
    areas = valid_rle_areas(rles)
    return np.array([area is None for area in areas], dtype=bool)


def valid_rle_areas(rles: Sequence[RLE]) -> list[int | None]:
    """The area (foreground pixels) of each RLE with compressed counts (str or bytes), or None
    where its runs do not cover exactly its height x width pixels or the string is malformed.

    A result file holds tens of thousands of RLEs: the string's form is checked with array
    operations (characters in range, the last number ended, at most 12 characters a number), and
    only then are the well-formed ones decoded, by the evaluator's own decoder (hotcoco's), so the
    runs judged here are the ones it will walk. The area comes from the same decode, so a caller
    that needs both does not decode twice.

    They are judged a few hundred at a time (CHECK_CHUNK_CHARS): the form check's arrays stay
    small, in cache, and are used again.
    """
    areas: list[int | None] = []
    start, chars = 0, 0
    for end, rle in enumerate(rles, start=1):
        chars += len(rle["counts"])
        if chars >= CHECK_CHUNK_CHARS or end == len(rles):
            areas.extend(_chunk_areas(rles[start:end]))
            start, chars = end, 0
    return areas


def _chunk_areas(rles: Sequence[RLE]) -> list[int | None]:
    """valid_rle_areas of one chunk."""
    # UTF-8 keeps ASCII as it is and makes every other character bytes of 0x80 and up, out of
    # the counts' range, so a non-ASCII string fails the range check (surrogatepass: a lone
    # surrogate, which JSON can carry, too).
    texts = [counts.encode("utf-8", "surrogatepass") if isinstance(counts, str) else counts
             for counts in (rle["counts"] for rle in rles)]
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    malformed = lengths == 0  # no runs: covers no pixel
    codes = np.frombuffer(b"".join(texts), dtype=np.uint8) - np.uint8(48)  # uint8: wraps below '0'
    text_ends = np.cumsum(lengths)
    if codes.size:
        malformed[np.searchsorted(text_ends, np.flatnonzero(codes >= 64), side="right")] = True
        more = codes >= 32  # bit 0x20: the number goes on
        malformed |= (lengths > 0) & more[np.maximum(text_ends - 1, 0)]  # ends inside a number
        going_on = np.flatnonzero(more)
        if going_on.size >= 12:  # 12 continuation characters in a row: a number of 13 or more
            long = going_on[:-11][going_on[11:] - going_on[:-11] == 11]
            malformed[np.searchsorted(text_ends, long, side="right")] = True
    areas: list[int | None] = [None] * len(rles)
    for i in np.flatnonzero(~malformed).tolist():
        areas[i] = _exact_area(texts[i], *rles[i]["size"])
    return areas


def _exact_area(text: bytes, height: int, width: int) -> int | None:
    """The area of a well-formed counts string whose runs cover exactly height x width pixels;
    None where a run is negative or they cover more or fewer.

    hotcoco's `area` refuses a negative run and runs past height x width; told the mask is one
    pixel smaller, it refuses exactly the runs that reach height x width. One RLE a call: a long list
    starts hotcoco's thread pool, which a process forked after it (steps.parallel) lacks.
    """
    pixels = int(height) * int(width)
    if pixels > MAX_PIXELS:  # larger than any image (and than hotcoco's 32-bit areas): decoded here
        runs = _runs(text)
        return int(runs[1::2].sum()) if (runs >= 0).all() and int(runs.sum()) == pixels else None
    area = _hotcoco_mask().area
    try:
        covered = area({"size": [int(height), int(width)], "counts": text})
    except ValueError:
        return None
    try:
        area({"size": [1, pixels - 1], "counts": text})
    except ValueError:
        return int(covered)
    return None  # its runs stop short of height x width


def _hotcoco_mask() -> Any:
    import hotcoco.mask

    return hotcoco.mask


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
    ious = _coco_mask().iou(list(detections), list(ground_truths), [0] * len(ground_truths))
    return np.asarray(ious, dtype=np.float64).reshape(len(detections), len(ground_truths))


def _compressed(rle: RLE) -> RLE:
    if isinstance(rle.get("counts"), list):
        # Uncompressed RLE (as pycocotools writes for iscrowd annotations).
        height, width = rle["size"]
        return _coco_mask().frPyObjects(rle, height, width)
    return rle


def _as_text(rle: RLE) -> RLE:
    # JSON needs text; the C API returns bytes.
    counts = rle["counts"]
    text = counts.decode("ascii") if isinstance(counts, bytes) else str(counts)
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": text}
