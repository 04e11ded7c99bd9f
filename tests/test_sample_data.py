from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from steps.datasets.coco import build_coco
from steps.datasets.labelme import load_labelme
from steps.metrics.plates import glyph, inside_polygon, read_string
from steps.metrics.plates import rows as plate_rows
from steps.datasets.sample_data import ALPHABET, PLATE_LABEL, generate_sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate_sample(tmp_path_factory.mktemp("sample"), num_images=40, seed=0)


def _plates_and_chars(path: Path) -> tuple[list[dict], list[dict]]:
    shapes = json.loads(path.read_text())["shapes"]
    return [s for s in shapes if s["label"] == PLATE_LABEL], [s for s in shapes if s["label"] != PLATE_LABEL]


def _flat(shape: dict) -> list[float]:
    return [v for point in shape["points"] for v in point]


def _center(shape: dict) -> tuple[float, float]:
    points = np.asarray(shape["points"])
    return float(points[:, 0].mean()), float(points[:, 1].mean())


def _box(shape: dict) -> list[float]:
    points = np.asarray(shape["points"])
    low, high = points.min(axis=0), points.max(axis=0)
    return [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])]


def _pixels(gray: np.ndarray, shape: dict) -> np.ndarray:
    mask = Image.new("1", (gray.shape[1], gray.shape[0]))
    ImageDraw.Draw(mask).polygon([tuple(p) for p in shape["points"]], fill=1)
    return gray[np.asarray(mask)]


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = generate_sample(tmp_path / "a", num_images=4, seed=5)
    second = generate_sample(tmp_path / "b", num_images=4, seed=5)
    other = generate_sample(tmp_path / "c", num_images=4, seed=6)
    assert [p.name for p in first] == ["plate_0000.json", "plate_0001.json", "plate_0002.json", "plate_0003.json"]
    for a, b, c in zip(first, second, other):
        assert a.read_bytes() == b.read_bytes()
        assert a.with_suffix(".jpg").read_bytes() == b.with_suffix(".jpg").read_bytes()
        assert a.with_suffix(".jpg").read_bytes() != c.with_suffix(".jpg").read_bytes()


def test_more_images_keep_the_earlier_ones(tmp_path: Path) -> None:
    few = generate_sample(tmp_path / "few", num_images=2, seed=1)
    many = generate_sample(tmp_path / "many", num_images=3, seed=1)
    assert [p.read_bytes() for p in few] == [p.read_bytes() for p in many[:2]]


def test_files_are_valid_labelme_with_a_matching_jpeg(tmp_path: Path) -> None:
    (path,) = generate_sample(tmp_path, num_images=1, seed=2, image_size=(200, 150))
    labelme = load_labelme(path)
    assert labelme.imagePath == "plate_0000.jpg"
    assert (labelme.imageWidth, labelme.imageHeight) == (200, 150)
    with Image.open(tmp_path / "plate_0000.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (200, 150))


def test_plates_have_4_to_5_characters_modest_rotation_and_do_not_overlap(sample: list[Path]) -> None:
    two_rows = 0
    for path in sample:
        plates, chars = _plates_and_chars(path)
        assert 1 <= len(plates) <= 2
        assert len(chars) == sum(len(p["description"]) for p in plates)
        boxes = []
        for plate in plates:
            # 4-5 digits, and on 2-row plates 2 more above them
            two_rows += len(plate["description"]) > 5
            assert len(plate["description"]) in (4, 5, 6, 7) and set(plate["description"]) <= set(ALPHABET)
            (x0, y0), (x1, y1) = plate["points"][:2]  # the top edge, left to right
            assert abs(math.degrees(math.atan2(y1 - y0, x1 - x0))) <= 25.1
            xs, ys = [p[0] for p in plate["points"]], [p[1] for p in plate["points"]]
            assert min(xs) >= 0 and min(ys) >= 0 and max(xs) <= 320 and max(ys) <= 240
            boxes.append((min(xs), min(ys), max(xs), max(ys)))
        if len(boxes) == 2:
            (a, b) = boxes
            assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]
    assert two_rows >= 5  # the sample holds 2-row plates (about a quarter)


def test_a_two_row_plate_is_read_row_by_row(sample: list[Path]) -> None:
    # Sorting along the plate alone would interleave the rows ("58" over "9244" as "95284..").
    read = 0
    for path in sample:
        plates, chars = _plates_and_chars(path)
        for plate in (p for p in plates if len(p["description"]) > 5):
            inside = [c for c in chars if inside_polygon(_flat(plate), *_center(c))]
            rows = plate_rows(np.asarray(plate["points"]), [glyph(c["label"], _box(c)) for c in inside])
            assert ["".join(g.label for g in row) for row in rows] == [plate["description"][:2], plate["description"][2:]]
            read += 1
    assert read >= 5


def test_sample_converts_cleanly_with_one_annotation_per_drawn_plate(sample: list[Path]) -> None:
    build = build_coco(sample)
    assert build.warnings == []
    assert {c["name"] for c in build.categories} == set(ALPHABET) | {PLATE_LABEL}
    plate_id = next(c["id"] for c in build.categories if c["name"] == PLATE_LABEL)
    drawn = [_plates_and_chars(path) for path in sample]
    plate_annotations = [a for a in build.annotations if a["category_id"] == plate_id]
    assert len(plate_annotations) == sum(len(plates) for plates, _ in drawn)
    assert len(build.annotations) - len(plate_annotations) == sum(len(chars) for _, chars in drawn)


def test_characters_lie_inside_their_plate_and_read_as_the_drawn_string(sample: list[Path]) -> None:
    for path in sample:
        plates, chars = _plates_and_chars(path)
        for char in chars:
            assert sum(inside_polygon(_flat(plate), *_center(char)) for plate in plates) == 1
        for plate in plates:
            inside = [glyph(c["label"], _box(c)) for c in chars if inside_polygon(_flat(plate), *_center(c))]
            assert read_string(np.asarray(plate["points"]), inside) == plate["description"]


def test_annotations_sit_on_the_drawn_pixels(sample: list[Path]) -> None:
    # A light plate under every plate polygon; dark ink and light plate inside every character box.
    for path in sample[:10]:
        gray = np.asarray(Image.open(path.with_suffix(".jpg")).convert("L"), dtype=np.float32)
        plates, chars = _plates_and_chars(path)
        for plate in plates:
            assert np.median(_pixels(gray, plate)) > 150
        for char in chars:
            pixels = _pixels(gray, char)
            assert (pixels < 100).mean() > 0.05 and (pixels > 150).mean() > 0.3
