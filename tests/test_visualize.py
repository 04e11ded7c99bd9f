"""Drawing predictions and ground truth: what changes, what stays, and the plate tag's colour."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from steps.masks import encode
from steps.reports.visualize import (
    MATCH_COLOR,
    MISMATCH_COLOR,
    UNKNOWN_COLOR,
    category_color,
    draw_ground_truth,
    draw_predictions,
)

CATEGORIES = [{"id": 1, "name": "plate"}, {"id": 2, "name": "A"}, {"id": 3, "name": "car"}]
GREY = 100


@pytest.fixture(autouse=True)
def _native_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read pixels at the image's own coordinates: no enlargement (tested on its own below)."""
    monkeypatch.setattr("steps.reports.visualize.MIN_SHORT_SIDE", 1)


def test_a_small_image_is_drawn_enlarged_so_tags_stay_small_beside_its_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("steps.reports.visualize.MIN_SHORT_SIDE", 480)
    plate = rectangle_prediction(1, 50, 40, 60, 20, size=(160, 120))
    drawn = draw_predictions(grey_image(160, 120), [plate], CATEGORIES, plate_reads=[(plate, "AB12")], truth_strings=["AB12"])
    assert drawn.size == (640, 480)  # 4x: the first whole factor reaching a 480 px short side
    # the mask covers the same share of the picture, and the tag is a small part of its height
    assert pixels(drawn)[4 * 50 + 20, 4 * 60 + 20].tolist() != [GREY] * 3 and pixels(drawn)[5, 5].tolist() == [GREY] * 3
    assert len(color_rows(drawn, MATCH_COLOR)) < 480 * 0.1


def grey_image(width: int = 320, height: int = 240) -> Image.Image:
    return Image.new("RGB", (width, height), (GREY, GREY, GREY))


def rectangle_prediction(
    category_id: int, x: int, y: int, w: int, h: int, size: tuple[int, int] = (320, 240)
) -> dict:
    """A prediction whose mask is exactly its box (pixels x..x+w-1, y..y+h-1)."""
    width, height = size
    mask = np.zeros((height, width), dtype=bool)
    mask[y : y + h, x : x + w] = True
    return {"image_id": 1, "category_id": category_id, "bbox": [x, y, w, h], "score": 0.9, "segmentation": encode(mask)}


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int32)


def color_count(image: Image.Image, color: tuple[int, int, int]) -> int:
    return int((pixels(image) == np.asarray(color)).all(axis=-1).sum())


def color_rows(image: Image.Image, color: tuple[int, int, int]) -> np.ndarray:
    return np.nonzero((pixels(image) == np.asarray(color)).all(axis=-1).any(axis=1))[0]


def test_mask_is_blended_inside_and_far_pixels_stay_untouched() -> None:
    # GIVEN a "car" (category 3) mask in the middle of a plain grey image
    image = grey_image()
    prediction = rectangle_prediction(3, 100, 100, 80, 60)

    # WHEN it is drawn
    drawn = pixels(draw_predictions(image, [prediction], CATEGORIES))

    # THEN a pixel deep inside the mask is 55% grey + 45% the category colour (hand-computed)
    red, green, blue = category_color(3)
    assert (red, green, blue) == (0, 130, 200)
    assert drawn[150, 140].tolist() == [55, 114, 145]  # 55 + 0, 55 + 58.5 -> 114 (half to even), 55 + 90
    # AND the box outline carries the category colour
    assert drawn[100, 140].tolist() == [0, 130, 200]
    # AND far-away pixels are untouched, as is the input image
    assert drawn[230, 5].tolist() == [GREY] * 3
    assert drawn[5, 315].tolist() == [GREY] * 3
    assert pixels(image)[150, 140].tolist() == [GREY] * 3


def test_prediction_without_mask_draws_only_its_box_and_tag() -> None:
    prediction = {"image_id": 1, "category_id": 2, "bbox": [100, 100, 80, 60], "score": 0.5}

    drawn = pixels(draw_predictions(grey_image(), [prediction], CATEGORIES))

    assert drawn[130, 100].tolist() == list(category_color(2))  # left edge of the box
    assert drawn[150, 140].tolist() == [GREY] * 3  # inside the box: no mask, no tint


def test_plate_tag_is_green_when_read_matches_red_when_not_blue_without_truth() -> None:
    image = grey_image()
    plate = rectangle_prediction(1, 110, 90, 100, 30)

    def drawn(truths: list[str] | None) -> Image.Image:
        return draw_predictions(image, [plate], CATEGORIES, plate_reads=[(plate, "AB12")], truth_strings=truths)

    matched, missed, unknown = drawn(["AB12", "ZZ99"]), drawn(["AB13"]), drawn(None)
    assert color_count(matched, MATCH_COLOR) > 200 and color_count(matched, MISMATCH_COLOR) == 0
    assert color_count(missed, MISMATCH_COLOR) > 200 and color_count(missed, MATCH_COLOR) == 0
    assert color_count(unknown, UNKNOWN_COLOR) > 200
    assert color_count(unknown, MATCH_COLOR) == color_count(unknown, MISMATCH_COLOR) == 0
    # "read / truth" is wider than the bare read: the mismatch tag covers more pixels
    assert color_count(missed, MISMATCH_COLOR) > color_count(unknown, UNKNOWN_COLOR)


def test_plate_tag_at_the_image_corner_stays_whole_inside_the_image() -> None:
    # GIVEN the same plate in the middle and pressed into the bottom-right corner
    middle = rectangle_prediction(1, 110, 90, 100, 30)
    corner = rectangle_prediction(1, 220, 210, 100, 30)

    def tag_area(plate: dict) -> int:
        drawn = draw_predictions(grey_image(), [plate], CATEGORIES, plate_reads=[(plate, "AB12")], truth_strings=[])
        return color_count(drawn, MISMATCH_COLOR)

    # THEN the corner tag is moved, not cut: it shows as many tag pixels as the free-standing one
    assert tag_area(corner) == tag_area(middle)


def test_tags_grow_with_the_image() -> None:
    def tag_height(width: int, height: int) -> int:
        plate = rectangle_prediction(1, width // 3, height // 3, width // 3, height // 8, size=(width, height))
        drawn = draw_predictions(
            grey_image(width, height), [plate], CATEGORIES, plate_reads=[(plate, "AB12")], truth_strings=["AB12"]
        )
        return len(color_rows(drawn, MATCH_COLOR))

    assert tag_height(1333, 800) > 2 * tag_height(320, 240)


def test_mask_of_another_image_size_is_refused() -> None:
    prediction = rectangle_prediction(2, 10, 10, 20, 20, size=(64, 48))
    with pytest.raises(ValueError, match="64x48 mask"):
        draw_predictions(grey_image(), [prediction], CATEGORIES)


def test_ground_truth_polygons_are_filled_and_plate_string_shown_neutral() -> None:
    # GIVEN a plate polygon (a rectangle given as 4 corners) and its true string
    annotation = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [100, 100, 100, 40], "iscrowd": 0,
                  "segmentation": [[100, 100, 200, 100, 200, 140, 100, 140]]}  # fmt: skip

    drawn = draw_ground_truth(grey_image(), [annotation], CATEGORIES, plate_strings=[(annotation, "AB12")])

    inside, far = pixels(drawn)[125, 150], pixels(drawn)[235, 5]
    assert inside.tolist() != [GREY] * 3  # tinted by the plate colour
    assert far.tolist() == [GREY] * 3
    assert color_count(drawn, UNKNOWN_COLOR) > 200
    assert color_count(drawn, MATCH_COLOR) == color_count(drawn, MISMATCH_COLOR) == 0


def test_category_colours_are_stable_and_distinct() -> None:
    assert category_color(4) == category_color(4)
    assert len({category_color(i) for i in range(1, 21)}) == 20


def test_many_low_score_predictions_leave_most_of_the_image_untagged() -> None:
    # What a low score threshold draws: dozens of overlapping guesses. Their boxes are drawn, but
    # tags that would pile on other tags are left out, so the picture stays visible.
    predictions = [{**rectangle_prediction(2, 100 + 3 * (i % 8), 90 + 4 * (i // 8) % 40, 30, 24), "score": 0.05 + i / 1000}
                   for i in range(120)]
    drawn = pixels(draw_predictions(grey_image(), predictions, CATEGORIES))
    outside = np.ones(drawn.shape[:2], dtype=bool)
    outside[88:140, 98:156] = False  # the boxes' union, with their outline
    changed = (drawn != GREY).any(axis=2) & outside
    assert 0 < changed.mean() < 0.07  # every tag placed somewhere: over 0.1
