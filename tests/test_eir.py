"""EIR and plate reading on hand-made plates: what is read, in which order, and what is ignored."""

from __future__ import annotations

import math

import numpy as np
import pytest

from steps.errors import ConfigError
from steps.masks import encode, polygons_to_mask
from steps.metrics import eir, read_plates

H, W = 100, 120
NAMES = ["plate", "1", "2", "3", "7"]
IDS = {name: i + 1 for i, name in enumerate(NAMES)}
PLATE = [10, 40, 70, 40, 70, 60, 10, 60]  # 60 x 20, axis = x
CENTRES = {"1": (20, 50), "2": (40, 50), "3": (60, 50)}  # left to right


def box(cx: float, cy: float, size: float = 8) -> list[float]:
    return [cx - size / 2, cy - size / 2, size, size]


def ground_truth(plates: list[tuple[int, list[float], dict[str, tuple[float, float]]]], images: int = 1) -> dict:
    """`plates`: (image_id, plate polygon, {character: centre}) - characters may repeat via suffixes."""
    anns = []

    def add(image_id: int, name: str, segmentation: list, bbox: list[float]) -> None:
        anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": IDS[name], "bbox": bbox,
                     "segmentation": segmentation, "area": bbox[2] * bbox[3], "iscrowd": 0})

    for image_id, poly, characters in plates:
        xs, ys = poly[0::2], poly[1::2]
        add(image_id, "plate", [poly], [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)])
        for name, (cx, cy) in characters.items():
            bbox = box(cx, cy)
            x, y, w, h = bbox
            add(image_id, name[0], [[x, y, x + w, y, x + w, y + h, x, y + h]], bbox)
    return {"images": [{"id": i, "file_name": f"{i}.jpg", "height": H, "width": W} for i in range(1, images + 1)],
            "annotations": anns, "categories": [{"id": IDS[n], "name": n} for n in NAMES]}


def plate_prediction(poly: list[float], score: float = 0.95, image_id: int = 1) -> dict:
    mask = polygons_to_mask([poly], H, W)
    rows, cols = np.nonzero(mask)
    return {"image_id": image_id, "category_id": IDS["plate"], "score": score, "segmentation": encode(mask),
            "bbox": [float(cols.min()), float(rows.min()), float(np.ptp(cols) + 1), float(np.ptp(rows) + 1)]}


def char_prediction(name: str, centre: tuple[float, float], score: float = 0.9, image_id: int = 1) -> dict:
    bbox = box(*centre)
    x, y, w, h = (int(v) for v in bbox)
    mask = np.zeros((H, W), dtype=bool)
    mask[y : y + h, x : x + w] = True
    return {"image_id": image_id, "category_id": IDS[name], "score": score, "bbox": bbox, "segmentation": encode(mask)}


def test_correct_read() -> None:
    gt = ground_truth([(1, PLATE, CENTRES)])
    # Predictions in scrambled order: reading order comes from positions only.
    results = [char_prediction("3", CENTRES["3"]), plate_prediction(PLATE), char_prediction("1", CENTRES["1"]),
               char_prediction("2", CENTRES["2"])]
    assert eir(gt, results) == {"EIR": 1.0, "plates": 1, "exact": 1,
                                "reads": [{"image_id": 1, "truth": "123", "read": "123"}]}


def test_one_wrong_character() -> None:
    gt = ground_truth([(1, PLATE, CENTRES)])
    results = [plate_prediction(PLATE), char_prediction("1", CENTRES["1"]), char_prediction("7", CENTRES["2"]),
               char_prediction("3", CENTRES["3"])]
    got = eir(gt, results)
    assert got["reads"] == [{"image_id": 1, "truth": "123", "read": "173"}]
    assert (got["EIR"], got["exact"]) == (0.0, 0)


def test_missing_character() -> None:
    gt = ground_truth([(1, PLATE, CENTRES)])
    results = [plate_prediction(PLATE), char_prediction("1", CENTRES["1"]), char_prediction("3", CENTRES["3"])]
    assert eir(gt, results)["reads"][0]["read"] == "13"


def test_plate_not_detected() -> None:
    gt = ground_truth([(1, PLATE, CENTRES)])
    characters = [char_prediction(n, c) for n, c in CENTRES.items()]
    assert eir(gt, characters)["reads"] == [{"image_id": 1, "truth": "123", "read": None}]
    # A plate prediction covering only the left third (IoU 1/3 < 0.5) does not count either.
    got = eir(gt, [plate_prediction([10, 40, 30, 40, 30, 60, 10, 60]), *characters])
    assert got["EIR"] == 0.0 and got["reads"][0]["read"] is None
    # With plate_iou 0.3 it matches, and only the character inside it is read.
    got = eir(gt, [plate_prediction([10, 40, 30, 40, 30, 60, 10, 60]), *characters], plate_iou=0.3)
    assert got["reads"][0]["read"] == "1"


def test_rotated_plate_reads_left_to_right() -> None:
    # A plate tilted by 30 degrees, rising to the right; characters along its axis.
    angle = np.radians(-30)
    axis, up = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    centre = np.array([60.0, 50.0])
    corners = [centre + sx * 35 * axis + sy * 10 * up for sx, sy in [(-1, -1), (1, -1), (1, 1), (-1, 1)]]
    poly = [round(float(v), 2) for corner in corners for v in corner]
    spots = {name: tuple(centre + offset * axis) for name, offset in [("7", -22.0), ("1", 0.0), ("3", 22.0)]}
    gt = ground_truth([(1, poly, {"3": spots["3"], "7": spots["7"], "1": spots["1"]})])  # GT listed out of order
    results = [char_prediction(n, spots[n]) for n in ("3", "1", "7")] + [plate_prediction(poly)]
    got = eir(gt, results)
    assert got["reads"] == [{"image_id": 1, "truth": "713", "read": "713"}]
    assert got["EIR"] == 1.0


def test_low_score_characters_are_ignored() -> None:
    gt = ground_truth([(1, PLATE, CENTRES)])
    results = [plate_prediction(PLATE), *(char_prediction(n, c) for n, c in CENTRES.items()),
               char_prediction("7", (30, 50), score=0.3)]
    assert eir(gt, results)["reads"][0]["read"] == "123"
    assert eir(gt, results, char_score=0.2)["reads"][0]["read"] == "1723"
    # A correct character below the threshold is as good as missing.
    weak = [plate_prediction(PLATE), char_prediction("1", CENTRES["1"]), char_prediction("2", CENTRES["2"], 0.49),
            char_prediction("3", CENTRES["3"])]
    assert eir(gt, weak)["reads"][0]["read"] == "13"


def test_characters_outside_the_predicted_plate_are_not_read() -> None:
    gt = ground_truth([(1, PLATE, CENTRES)])
    results = [plate_prediction(PLATE), *(char_prediction(n, c) for n, c in CENTRES.items()),
               char_prediction("7", (100, 50)), char_prediction("7", (40, 80))]
    assert eir(gt, results)["EIR"] == 1.0


def test_rate_over_plates_of_several_images() -> None:
    second = [20, 10, 80, 10, 80, 30, 20, 30]
    gt = ground_truth([(1, PLATE, CENTRES), (2, second, {"7": (30, 20), "1": (50, 20)})], images=3)
    results = [plate_prediction(PLATE), *(char_prediction(n, c) for n, c in CENTRES.items()),
               plate_prediction(second, image_id=2), char_prediction("7", (30, 20), image_id=2)]
    got = eir(gt, results)
    assert (got["plates"], got["exact"], got["EIR"]) == (2, 1, 0.5)
    assert got["reads"][1] == {"image_id": 2, "truth": "71", "read": "7"}


def test_read_plates_reads_every_predicted_plate_of_an_image() -> None:
    second = [20, 70, 80, 70, 80, 90, 20, 90]
    image = [plate_prediction(PLATE), plate_prediction(second, score=0.6),
             *(char_prediction(n, c) for n, c in CENTRES.items()),
             char_prediction("7", (70, 80)), char_prediction("3", (30, 80)), char_prediction("1", (50, 80), 0.1)]
    names = {IDS[n]: n for n in NAMES}
    got = read_plates(image, names)
    assert [(plate["score"], text) for plate, text in got] == [(0.95, "123"), (0.6, "37")]


def test_no_plates_and_unknown_plate_label() -> None:
    assert math.isnan(eir(ground_truth([]), [])["EIR"])
    with pytest.raises(ConfigError, match="evaluate.plate_label: 'board'"):
        eir(ground_truth([(1, PLATE, CENTRES)]), [], plate_label="board")


def test_one_threshold_for_plates_and_characters() -> None:
    """A plate below read_score is neither read by EIR nor by the report (read_plates)."""
    gt = ground_truth([(1, PLATE, CENTRES)])
    characters = [char_prediction(n, c) for n, c in CENTRES.items()]
    weak_plate = [plate_prediction(PLATE, score=0.3), *characters]
    assert eir(gt, weak_plate)["reads"][0]["read"] is None
    assert read_plates(weak_plate, {IDS[n]: n for n in NAMES}) == []
    assert eir(gt, weak_plate, read_score=0.2)["reads"][0]["read"] == "123"


def test_a_glyph_predicted_as_two_classes_is_read_once() -> None:
    gt = ground_truth([(1, PLATE, CENTRES)])
    # "2" also predicted as "7" one pixel off, scoring lower: the model keeps both (per-class NMS).
    results = [plate_prediction(PLATE), *(char_prediction(n, c) for n, c in CENTRES.items()),
               char_prediction("7", (41, 50), score=0.8)]
    assert eir(gt, results)["reads"][0]["read"] == "123"
    assert eir(gt, results, char_nms_iou=1.0)["reads"][0]["read"] in ("1273", "1723")  # suppression off
    # Neighbouring characters do not overlap: none is suppressed.
    assert eir(gt, [plate_prediction(PLATE), *(char_prediction(n, c) for n, c in CENTRES.items())])["EIR"] == 1.0


def _rotated(points: np.ndarray, degrees: float, centre: tuple[float, float]) -> np.ndarray:
    angle = math.radians(degrees)
    turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return (np.asarray(points, dtype=float) - centre) @ turn.T + centre


@pytest.mark.parametrize("degrees", [0.0, 12.0, -20.0])
def test_a_two_row_plate_is_read_row_by_row(degrees: float) -> None:
    # "12AB" over "34567": sorted along the plate alone, the rows interleave ("31245A6B7").
    from steps.metrics.plates import glyph, read_string

    names = ["plate", *"1234567AB"]
    ids = {name: i + 1 for i, name in enumerate(names)}
    centre = (60.0, 50.0)
    plate = _rotated([[20, 28], [100, 28], [100, 72], [20, 72]], degrees, centre)
    rows = [("12AB", 40.0, 14.0), ("34567", 60.0, 12.0)]  # characters, centre y, size (top row smaller)
    anns, results = [], []
    xs, ys = plate[:, 0], plate[:, 1]
    anns.append({"id": 1, "image_id": 1, "category_id": 1, "segmentation": [plate.ravel().round(2).tolist()],
                 "bbox": [xs.min(), ys.min(), np.ptp(xs), np.ptp(ys)], "area": 3520.0, "iscrowd": 0})
    results.append(plate_prediction(plate.ravel().tolist()))
    for text, y, size in rows:
        for k, char in enumerate(text):
            x = 60 + (k - (len(text) - 1) / 2) * (size + 2)
            cx, cy = _rotated([[x, y]], degrees, centre)[0]
            bbox = [cx - size / 2, cy - size / 2, size, size]
            corners = [cx - size / 2, cy - size / 2, cx + size / 2, cy - size / 2, cx + size / 2, cy + size / 2,
                       cx - size / 2, cy + size / 2]
            anns.append({"id": len(anns) + 1, "image_id": 1, "category_id": ids[char], "segmentation": [corners],
                         "bbox": bbox, "area": size * size, "iscrowd": 0})
            mask = polygons_to_mask([corners], H, W)
            results.append({"image_id": 1, "category_id": ids[char], "score": 0.9, "bbox": bbox,
                            "segmentation": encode(mask)})
    gt = {"images": [{"id": 1, "file_name": "1.jpg", "height": H, "width": W}], "annotations": anns,
          "categories": [{"id": ids[n], "name": n} for n in names]}
    scored = eir(gt, results)
    assert scored["reads"] == [{"image_id": 1, "truth": "12AB34567", "read": "12AB34567"}] and scored["EIR"] == 1.0
    # The same characters read along the plate's axis only, as before: the rows interleave.
    chars = [glyph(names[a["category_id"] - 1], a["bbox"]) for a in anns[1:]]
    flat = "".join(c.label for c in sorted(chars, key=lambda c: c.x * math.cos(math.radians(degrees))
                                           + c.y * math.sin(math.radians(degrees))))
    assert flat != "12AB34567" and read_string(plate, chars) == "12AB34567"


def test_the_test_report_reads_plates_as_eir_does(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # test.score_threshold draws (0.8 here); plates are read at evaluate.read_score (0.5), so a
    # character at 0.6 is in the report's reading exactly as in EIR's.
    import json

    from PIL import Image

    from steps.reports import pages as report
    from steps.config import load_config
    from steps.test import inference

    gt = ground_truth([(1, PLATE, CENTRES)])
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "test.json").write_text(json.dumps(gt))
    Image.new("RGB", (W, H), "white").save(tmp_path / "data" / "images" / "1.jpg")
    predictions = [plate_prediction(PLATE), char_prediction("1", CENTRES["1"]),
                   char_prediction("2", CENTRES["2"], score=0.6), char_prediction("3", CENTRES["3"])]

    class StandIn:
        categories = [{"id": IDS[n], "name": n} for n in NAMES]

        def predict(self, path, image_id, threshold):
            return [p for p in predictions if p["score"] >= threshold]

    monkeypatch.setattr(inference, "_load_model", lambda *args: (StandIn(), "m1"))
    shown: list = []
    monkeypatch.setattr(report, "write_test_report", lambda out, items, *args, **kwargs: shown.extend(items) or out)
    config = load_config(None, [f"promotion.registry={tmp_path / 'registry'}", "test.score_threshold=0.8",
                                "evaluate.read_score=0.5", "test.batch_size=1"])
    inference.run_test(config, tmp_path / "data", "m1", tmp_path / "report", "datasets/v1")
    scored = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert scored["EIR"] == 1.0
    (item,) = shown
    assert item.plate_reads == ["123"] and item.truth_strings == ["123"] and item.num_detections == 3
