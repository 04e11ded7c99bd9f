"""steps.masks: RLE round trips, COCO-identical encoding and polygon rasterisation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pycocotools.mask as reference
import pytest

from steps.masks import decode, encode, iou_matrix, polygons_to_mask, polygons_to_rle

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools on numpy 2


def test_encode_decode_round_trip_random_masks() -> None:
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (5, 7), (40, 33)]:
        mask = rng.random(shape) > 0.6
        rle = encode(mask)
        assert rle["size"] == list(shape)
        assert isinstance(rle["counts"], str)
        json.dumps(rle)  # must be JSON-serialisable as is
        restored = decode(rle)
        assert restored.dtype == bool
        np.testing.assert_array_equal(restored, mask)


def test_encode_matches_pycocotools_bytes() -> None:
    rng = np.random.default_rng(1)
    mask = rng.random((17, 23)) > 0.5
    ours = encode(mask)
    theirs = reference.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert ours["counts"] == theirs["counts"].decode("ascii")


def test_encode_accepts_non_contiguous_views() -> None:
    mask = np.zeros((6, 10), dtype=bool)
    mask[1:4, 2:8] = True
    view = mask[:, ::2]
    np.testing.assert_array_equal(decode(encode(view)), view)


def test_decode_uncompressed_rle() -> None:
    # Column-major runs: 8 zeros, 5 ones, 3 zeros in a 4 x 4 image.
    mask = decode({"size": [4, 4], "counts": [8, 5, 3]})
    expected = np.zeros((4, 4), dtype=bool)
    expected.T.flat[8:13] = True
    np.testing.assert_array_equal(mask, expected)


def test_rectangle_polygon_covers_pixels_whose_centres_are_inside() -> None:
    mask = polygons_to_mask([[2, 1, 7, 1, 7, 4, 2, 4]], height=6, width=8)
    expected = np.zeros((6, 8), dtype=bool)
    expected[1:4, 2:7] = True  # x in [2, 7), y in [1, 4)
    np.testing.assert_array_equal(mask, expected)


def test_polygons_match_pycocotools_rasterisation() -> None:
    polygons = [[10.3, 4.1, 30.7, 8.2, 25.5, 27.9, 6.1, 20.0], [40, 40, 48, 41, 44, 49]]
    ours = polygons_to_mask(polygons, 60, 55)
    theirs = reference.decode(reference.merge(reference.frPyObjects(polygons, 60, 55))).astype(bool)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.sum() > 0


def test_degenerate_polygons_give_an_empty_mask() -> None:
    assert not polygons_to_mask([[1, 1, 3, 3]], 5, 5).any()
    assert not polygons_to_mask([], 5, 5).any()


def test_iou_matrix_on_hand_values() -> None:
    a = np.zeros((10, 10), dtype=bool)
    a[0:4, 0:5] = True  # 20 px
    b = np.zeros((10, 10), dtype=bool)
    b[0:4, 2:7] = True  # 20 px, 12 shared -> IoU 12 / 28
    ious = iou_matrix([encode(a), encode(b)], [encode(b), polygons_to_rle([[0, 0, 5, 0, 5, 4, 0, 4]], 10, 10)])
    np.testing.assert_allclose(ious, [[12 / 28, 1.0], [1.0, 12 / 28]])
    assert iou_matrix([], [encode(a)]).shape == (0, 1)


def _corrupted_rles(seed: int, count: int) -> list[dict]:
    """Valid RLEs and broken ones: cut short, a character replaced, junk appended, random text,
    over-long numbers, bytes, non-ASCII, empty."""
    rng = np.random.default_rng(seed)
    rles = []
    for _ in range(count):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        counts = encode(rng.random((h, w)) < rng.random())["counts"]
        kind = int(rng.integers(0, 9))
        if kind == 1:
            counts = counts[: int(rng.integers(0, len(counts) + 1))]
        elif kind == 2 and counts:
            i = int(rng.integers(0, len(counts)))
            counts = counts[:i] + chr(int(rng.integers(30, 300))) + counts[i + 1:]
        elif kind == 3:
            counts += "".join(chr(int(c)) for c in rng.integers(48, 112, int(rng.integers(1, 15))))
        elif kind == 4:
            counts = "".join(chr(int(c)) for c in rng.integers(48, 112, int(rng.integers(0, 30))))
        elif kind == 5:
            counts = "".join(chr(int(c)) for c in rng.integers(80, 112, int(rng.integers(10, 16)))) + "0"
        elif kind == 6 and counts.isascii():
            counts = counts.encode("ascii")
        rles.append({"size": [h, w], "counts": counts})
    return rles


def _reference_refuses(rle: dict) -> bool:
    """COCO's compressed counts decoded plainly (rleFrString in Python): refused when malformed,
    a run is negative or the runs do not add up to height x width."""
    text = rle["counts"].decode("latin-1") if isinstance(rle["counts"], bytes) else rle["counts"]
    runs, pos = [], 0
    while pos < len(text):
        value = shift = 0
        while True:
            if pos >= len(text) or shift > 60 or not 0 <= ord(text[pos]) - 48 < 64:
                return True
            code = ord(text[pos]) - 48
            value |= (code & 0x1F) << shift
            pos, shift = pos + 1, shift + 5
            if not code & 0x20:
                value |= -1 << shift if code & 0x10 else 0
                break
        runs.append(value + runs[-2] if len(runs) > 2 else value)
    return any(r < 0 for r in runs) or sum(runs) != rle["size"][0] * rle["size"][1]


def test_invalid_rles_refuses_what_a_plain_decoder_refuses() -> None:
    from steps.masks import check_rle, invalid_rles

    for seed in range(40):
        rles = _corrupted_rles(seed, 50)
        expected = [_reference_refuses(rle) for rle in rles]
        assert any(expected) and not all(expected)
        assert invalid_rles(rles).tolist() == expected
        for rle, refused in zip(rles, expected):
            if refused:
                with pytest.raises(ValueError):
                    check_rle(rle)
            else:
                check_rle(rle)
    assert invalid_rles([{"size": [2, 2], "counts": ""}]).tolist() == [True]
    # Non-ASCII counts, a lone surrogate (JSON's "\\udc80" gives one) among them, are refused.
    # "\u0430" + "1": as UTF-8 bytes the C decoder would read runs [0, 1], the whole 1 x 1 image.
    texts = ("\udc80", "0\u00e9", "\u04301", "01")
    assert invalid_rles([{"size": [1, 1], "counts": text} for text in texts]).tolist() == [True, True, True, False]


def test_valid_rle_areas_are_the_mask_areas_from_the_same_decode() -> None:
    from faster_coco_eval.core import mask as coco_mask

    from steps.masks import decode, invalid_rles, valid_rle_areas

    for seed in range(10):
        rles = _corrupted_rles(seed, 50)
        areas = valid_rle_areas(rles)
        assert [area is None for area in areas] == invalid_rles(rles).tolist()
        for rle, area in zip(rles, areas):
            if area is not None:
                assert area == int(decode(rle).sum()) == int(coco_mask.area([rle])[0])


@pytest.mark.parametrize("chunk_chars", [1, 7, 64, 500])
def test_valid_rle_areas_are_the_same_judged_in_chunks(monkeypatch: pytest.MonkeyPatch, chunk_chars: int) -> None:
    # A file is judged a few hundred RLEs at a time (steps.masks.CHECK_CHUNK_CHARS); where the
    # chunks end must change nothing: a malformed RLE on either side of a boundary, the first or
    # the last of a chunk, an empty string (no characters: never ends a chunk alone).
    import steps.masks as masks

    rles = [rle for seed in range(4) for rle in _corrupted_rles(seed, 50)]
    rles.insert(30, {"size": [2, 2], "counts": ""})
    whole = masks.valid_rle_areas(rles)
    monkeypatch.setattr(masks, "CHECK_CHUNK_CHARS", chunk_chars)
    assert masks.valid_rle_areas(rles) == whole
    assert [area is None for area in whole] == [_reference_refuses(rle) for rle in rles]
    assert masks.valid_rle_areas([]) == []


def test_valid_rle_areas_of_masks_larger_than_any_image_are_judged_alike() -> None:
    # Beyond MAX_PIXELS (hotcoco's 32-bit areas) the runs are decoded here, with the same verdicts.
    from steps.masks import valid_rle_areas

    rles = [{"size": [10000, 10000], "counts": text} for text in ("0PXh[o2", "0oWh[o2", "1PXh[o2")]
    assert valid_rle_areas(rles) == [100_000_000, None, None]  # all; one short; one run past the end


def test_judging_rles_starts_no_threads() -> None:
    # Worker processes forked after a library's thread pool started lack its threads and wait
    # for them forever (steps.parallel): judging a results file's RLEs must start none.
    probe = ("import os, numpy as np; from steps.masks import encode, valid_rle_areas; "
             "rles = [encode(np.eye(40, dtype=bool))] * 3000; before = len(os.listdir('/proc/self/task')); "
             "assert all(valid_rle_areas(rles)); print(before, len(os.listdir('/proc/self/task')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    before, after = done.stdout.split()
    assert before == after, done.stderr
