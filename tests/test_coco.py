"""labelme -> COCO: conversion semantics, every input check, on_invalid, and the dataset writer."""

from __future__ import annotations

import base64
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steps.datasets.coco import InvalidFiles, build_coco, polygon_area, write_coco_dataset
from steps.errors import ConfigError, ExternalError, InputError


def _shape(label: str, points: list[list[float]], shape_type: str = "polygon", group_id: int | None = None,
           **extra: object) -> dict:
    return {"label": label, "points": points, "group_id": group_id, "shape_type": shape_type, "flags": {}, **extra}


def _labelme_pair(folder: Path, name: str, shapes: list[dict], size: tuple[int, int] = (40, 30), **doc: object) -> Path:
    """Write `name`.png of `size` (width, height) and `name`.json annotating it (`doc` overrides keys)."""
    Image.new("RGB", size, (90, 90, 90)).save(folder / f"{name}.png")
    data = {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": f"{name}.png",
        "imageData": None,
        "imageHeight": size[1],
        "imageWidth": size[0],
        **doc,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def _png_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


SQUARE = [[0, 0], [4, 0], [4, 4], [0, 4]]  # area 16


def test_polygon_area_by_hand() -> None:
    assert polygon_area([0, 0, 4, 0, 4, 3]) == 6.0  # right triangle 4 x 3
    assert polygon_area([0, 0, 0, 4, 4, 4, 4, 0]) == 16.0  # clockwise counts the same


def test_group_id_merges_shapes_of_one_label(tmp_path: Path) -> None:
    far_square = [[10, 10], [12, 10], [12, 13], [10, 13]]  # 2 x 3 pixels
    path = _labelme_pair(
        tmp_path,
        "a",
        [
            _shape("car", SQUARE, group_id=1),
            _shape("car", far_square, group_id=1),
            _shape("wheel", SQUARE, group_id=1),  # same group, other label: its own instance
            _shape("car", SQUARE),  # no group: its own instance
        ],
    )
    build = build_coco([path])
    assert [c["name"] for c in build.categories] == ["car", "wheel"]
    merged, wheel, single = build.annotations
    assert merged["segmentation"] == [[0, 0, 4, 0, 4, 4, 0, 4], [10, 10, 12, 10, 12, 13, 10, 13]]
    assert merged["area"] == 16 + 6  # pixels of the mask
    assert merged["bbox"] == [0, 0, 12, 13]  # box of the mask
    assert (wheel["category_id"], single["category_id"]) == (2, 1)
    assert [a["id"] for a in build.annotations] == [1, 2, 3]
    assert build.num_shapes == {"a.png": 4}


def test_area_and_bbox_come_from_the_mask_not_the_outline(tmp_path: Path) -> None:
    triangle = [[0, 0], [6.2, 0], [0, 6.2]]  # outline area 19.22
    box = [[1.3, 1.3], [4.7, 3.6]]  # outline area 3.4 x 2.3 = 7.82
    path = _labelme_pair(tmp_path, "a", [_shape("t", triangle), _shape("r", box, "rectangle")])
    tri, rect = build_coco([path]).annotations
    # Pixel (c, r) is in the mask when its center (c + .5, r + .5) is inside: c + r <= 5 gives rows
    # of 6, 5, 4, 3, 2, 1 pixels; the box holds the centers of columns 1-4 and rows 1-3.
    assert (tri["area"], tri["bbox"]) == (21, [0.0, 0.0, 6.0, 6.0])
    assert (rect["area"], rect["bbox"]) == (12, [1.0, 1.0, 4.0, 3.0])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy 2 vs pycocotools, not ours
def test_a_circle_from_points_inside_the_image_is_clipped_to_it(tmp_path: Path) -> None:
    # Its two points lie inside the 40 x 30 image, its outline does not: the polygon written stays inside.
    path = _labelme_pair(tmp_path, "a", [_shape("c", [[3, 15], [3, 25]], "circle"), _shape("p", [[1, 1], [9, 1], [9, 5]])])
    circle, polygon = build_coco([path]).annotations
    xs, ys = circle["segmentation"][0][0::2], circle["segmentation"][0][1::2]
    assert min(xs) == 0 and max(xs) <= 13.01 and min(ys) >= 4.99 and max(ys) <= 25.01
    assert circle["bbox"][0] == 0 and polygon["segmentation"] == [[1, 1, 9, 1, 9, 5]]


def test_rectangle_circle_and_oriented_rectangle(tmp_path: Path) -> None:
    mask_api = pytest.importorskip("pycocotools.mask")
    diamond = [[20, 2], [24, 6], [20, 10], [16, 6]]  # a square turned 45 degrees, side 4*sqrt(2)
    path = _labelme_pair(
        tmp_path,
        "a",
        [
            _shape("r", [[5, 2], [1, 8]], "rectangle"),
            _shape("c", [[20, 15], [20, 25]], "circle"),
            _shape("o", diamond, "oriented_rectangle"),
        ],
    )
    rectangle, circle, oriented = build_coco([path]).annotations
    assert rectangle["segmentation"] == [[5, 2, 1, 2, 1, 8, 5, 8]]
    assert rectangle["area"] == 24 and rectangle["bbox"] == [1, 2, 4, 6]
    points = np.asarray(circle["segmentation"][0]).reshape(-1, 2)
    # Radius 10 with edges at most 0.5 px inside the circle: 16 points (10 would do, 16 is the minimum).
    assert len(points) == 16
    assert np.allclose(np.hypot(points[:, 0] - 20, points[:, 1] - 15), 10, atol=0.01)
    # A regular 16-gon of radius 10 has area 8 * 100 * sin(pi / 8) = 306.1; its mask about as many pixels,
    # exactly as many as pycocotools rasterizes from the written polygon.
    assert abs(circle["area"] - 16 / 2 * 100 * math.sin(2 * math.pi / 16)) < 10
    rle = mask_api.merge(mask_api.frPyObjects(circle["segmentation"], 30, 40))
    assert circle["area"] == int(mask_api.area(rle))
    assert circle["bbox"] == [10, 5, 20, 20]
    assert oriented["segmentation"] == [[20, 2, 24, 6, 20, 10, 16, 6]] and oriented["area"] == 32


def test_mask_shape_becomes_an_rle_merged_with_its_group(tmp_path: Path) -> None:
    patch = np.zeros((3, 4), dtype=np.uint8)
    patch[1:, :3] = 255  # 2 rows x 3 columns set
    shapes = [
        _shape("m", [[10, 20], [13, 22]], "mask", group_id=7, mask=_png_b64(patch)),
        _shape("m", SQUARE, group_id=7),
    ]
    path = _labelme_pair(tmp_path, "a", shapes)
    (ann,) = build_coco([path]).annotations
    from steps.masks import decode

    mask = decode(ann["segmentation"])
    assert mask.shape == (30, 40)
    assert mask[21:23, 10:13].all() and mask[0:4, 0:4].all()
    assert ann["area"] == 6 + 16 and int(mask.sum()) == 22
    assert ann["bbox"] == [0, 0, 13, 23]


def test_lines_points_and_reserved_labels_are_skipped_with_a_warning(tmp_path: Path) -> None:
    path = _labelme_pair(
        tmp_path,
        "a",
        [
            _shape("a", SQUARE),
            _shape("crack", [[0, 0], [5, 5]], "line"),
            _shape("dot", [[1, 1]], "point"),
            _shape("__ignore__", SQUARE),
        ],
    )
    build = build_coco([path], root=tmp_path)
    assert len(build.annotations) == 1
    assert [c["name"] for c in build.categories] == ["a"]  # skipped labels make no category
    assert build.warnings == [
        "a.json: shape 1 ('crack') skipped: a line has no area",
        "a.json: shape 2 ('dot') skipped: a point has no area",
        "a.json: shape 3 ('__ignore__') skipped: labelme's reserved label is not an object",
    ]


def test_points_slightly_outside_are_clipped_with_a_warning(tmp_path: Path) -> None:
    path = _labelme_pair(tmp_path, "a", [_shape("a", [[-1.5, 0], [41, 0], [41, 30.5], [-1.5, 30.5]])])
    build = build_coco([path], root=tmp_path)
    (ann,) = build.annotations
    assert ann["segmentation"] == [[0, 0, 40, 0, 40, 30, 0, 30]]
    assert ann["area"] == 40 * 30 and ann["bbox"] == [0, 0, 40, 30]
    assert build.warnings == ["a.json: shape 0 ('a'): 4 point(s) up to 1.5 px outside the image, clipped"]
    with pytest.raises(InputError, match=r"up to 1\.5 px outside the 40x30 image \(tolerance 1 px\)"):
        build_coco([path], clip_tolerance=1.0)


def test_a_shape_smaller_than_a_pixel_is_skipped_with_a_warning(tmp_path: Path) -> None:
    sliver = [[1.1, 1.1], [1.4, 1.1], [1.4, 1.4]]  # covers no pixel center
    path = _labelme_pair(tmp_path, "a", [_shape("a", SQUARE), _shape("a", sliver)])
    build = build_coco([path], root=tmp_path)
    assert len(build.annotations) == 1
    assert build.warnings == ["a.json: instance 2 ('a') covers no pixel center; skipped"]


def test_labels_fix_category_order_and_reject_unknown_labels(tmp_path: Path) -> None:
    path = _labelme_pair(tmp_path, "a", [_shape("b", SQUARE), _shape("a", SQUARE)])
    build = build_coco([path], labels=["__ignore__", "_background_", "b", "a", "unused"])
    assert build.categories == [
        {"id": 1, "name": "b", "supercategory": ""},
        {"id": 2, "name": "a", "supercategory": ""},
        {"id": 3, "name": "unused", "supercategory": ""},
    ]
    assert [a["category_id"] for a in build.annotations] == [1, 2]
    with pytest.raises(InputError, match=r"a\.json: shape 1 has label 'a', which is not in dataset\.labels \(b\)"):
        build_coco([path], labels=["b"])
    with pytest.raises(ConfigError, match="'b' listed more than once"):
        build_coco([path], labels=["b", "a", "b"])


def _truncated_jpeg(folder: Path) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((40, 30), 50).convert("RGB").save(buffer, format="JPEG")
    (folder / "bad.png").write_bytes(buffer.getvalue()[:-100])  # an interrupted copy: the end is missing


# Each bad case: (what to change in an otherwise valid file "bad.json", the reason expected).
BAD_CASES: dict[str, tuple[dict, str]] = {
    "json-syntax": ({"raw": '{"shapes": [,]}'}, r"not valid JSON at line 1, column 13"),
    "schema": ({"drop": "imageWidth"}, r"not a valid labelme file: imageWidth: Field required"),
    "wrong-point-count": ({"shapes": [_shape("a", [[1, 1], [2, 2], [3, 3]], "circle")]}, r"a circle needs"),
    "image-missing": ({"imagePath": "gone.png"}, r"image 'gone\.png' not found"),
    "image-path-absolute": ({"imagePath": "C:\\Users\\me\\bad.png"},
                            r"imagePath 'C:.*' is absolute \(from another machine\?\); make it relative to the JSON "
                            r"file, e\.g\. 'bad\.png'"),
    "image-path-absolute-posix": ({"imagePath": "/etc/hostname"}, r"imagePath '/etc/hostname' is absolute"),
    "no-shapes": ({"drop": "shapes"}, r"not a valid labelme file: shapes: Field required"),
    "image-not-an-image": ({"image_bytes": b"not an image"}, r"image 'bad\.png' is not an image file"),
    "image-truncated": ({"image": _truncated_jpeg}, r"image 'bad\.png' is truncated"),
    "size-mismatch": ({"imageWidth": 41}, r"imageWidth x imageHeight is 41x30 but image 'bad\.png' is 40x30"),
    "bad-image-data": ({"imageData": "%%%"}, r"imageData: not valid base64"),
    "unknown-label": ({"shapes": [_shape("zebra", SQUARE)]}, r"label 'zebra', which is not in dataset\.labels"),
    "empty-label": ({"shapes": [_shape("", SQUARE)]}, r"shape 0 has an empty label"),
    "not-finite": ({"shapes": [_shape("a", [[0, 0], [4, float("nan")], [4, 4]])]}, r"not a finite number"),
    "far-outside": ({"shapes": [_shape("a", [[-10, 0], [4, 0], [4, 4]])]}, r"up to 10\.0 px outside the 40x30 image"),
    "two-points": ({"shapes": [_shape("a", [[0, 0], [4, 4], [0, 0]])]}, r"shape 0 \('a'\) encloses no area \(2 distinct"),
    "collinear": ({"shapes": [_shape("a", [[0, 0], [2, 2], [4, 4]])]}, r"encloses no area \(3 distinct"),
    "flat-rectangle": ({"shapes": [_shape("a", [[1, 1], [1, 5]], "rectangle")]}, r"encloses no area"),
}


def _bad_file(folder: Path, case: str, name: str = "bad") -> Path:
    change, _ = BAD_CASES[case]
    path = _labelme_pair(folder, name, [_shape("a", SQUARE)])
    data = json.loads(path.read_text())
    for key, value in change.items():
        if key == "raw":
            path.write_text(value)
            return path
        if key == "drop":
            del data[value]
        elif key == "image_bytes":
            (folder / f"{name}.png").write_bytes(value)
        elif key == "image":
            value(folder)
        else:
            data[key] = value
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_each_bad_file_fails_the_build_and_names_file_and_reason(tmp_path: Path, case: str) -> None:
    good = _labelme_pair(tmp_path, "good", [_shape("a", SQUARE)])
    bad = _bad_file(tmp_path, case)
    with pytest.raises(InvalidFiles, match=rf"^bad\.json: .*{BAD_CASES[case][1]}") as error:
        build_coco([good, bad], labels=["a"], root=tmp_path)
    assert [problem.file for problem in error.value.problems] == ["bad.json"]
    assert "Traceback" not in str(error.value)


def test_skip_leaves_out_every_bad_file_with_its_reason(tmp_path: Path) -> None:
    good = _labelme_pair(tmp_path, "good", [_shape("a", SQUARE)])
    bad = []
    for case in BAD_CASES:
        (tmp_path / case).mkdir()
        bad.append(_bad_file(tmp_path / case, case))
    with pytest.raises(InvalidFiles, match=rf"^{len(BAD_CASES)} of {len(BAD_CASES) + 1} labelme files are invalid"):
        build_coco([good, *bad], labels=["a"], root=tmp_path)
    build = build_coco([good, *bad], labels=["a"], root=tmp_path, on_invalid="skip")
    assert [image["file_name"] for image in build.images] == ["good.png"]
    assert len(build.annotations) == 1
    reasons = {item.file: item.reason for item in build.skipped}
    assert sorted(reasons) == sorted(f"{case}/bad.json" for case in BAD_CASES)
    for case, (_, expected) in BAD_CASES.items():
        assert __import__("re").search(expected, reasons[f"{case}/bad.json"]), case


def test_nothing_valid_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    bad = _bad_file(tmp_path, "two-points")
    with pytest.raises(InputError, match=r"none of the 1 labelme files is valid; the first: bad\.json: shape 0"):
        build_coco([bad], root=tmp_path, on_invalid="skip")
    with pytest.raises(ConfigError, match="on_invalid: 'ignore' is not one of"):
        build_coco([bad], on_invalid="ignore")  # type: ignore[arg-type]


def test_duplicate_image_names_are_rejected_case_insensitively(tmp_path: Path) -> None:
    for folder in ("x", "y", "z"):
        (tmp_path / folder).mkdir()
    first = _labelme_pair(tmp_path / "x", "a", [_shape("a", SQUARE)])
    second = _labelme_pair(tmp_path / "y", "a", [_shape("a", SQUARE)])
    third = _labelme_pair(tmp_path / "z", "A", [_shape("a", SQUARE)])
    with pytest.raises(InvalidFiles, match=r"x/a\.json: image name 'a\.png' is also used by y/a\.json, z/A\.json"):
        build_coco([first, second, third], root=tmp_path)
    unique = _labelme_pair(tmp_path, "b", [_shape("a", SQUARE)])
    build = build_coco([first, second, unique], root=tmp_path, on_invalid="skip")
    assert [i["file_name"] for i in build.images] == ["b.png"]  # which of the twins is meant is unknown
    assert [s.file for s in build.skipped] == ["x/a.json", "y/a.json"]


def test_decode_images_catches_corrupt_pixel_data(tmp_path: Path) -> None:
    path = _labelme_pair(tmp_path, "a", [_shape("a", SQUARE)])
    buffer = io.BytesIO()
    Image.effect_noise((40, 30), 50).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IDAT") + 20
    data[start : start + 30] = bytes(b ^ 0xFF for b in data[start : start + 30])  # header and end intact
    (tmp_path / "a.png").write_bytes(bytes(data))
    assert len(build_coco([path]).images) == 1  # the header check cannot see it...
    with pytest.raises(InputError, match=r"image 'a\.png' cannot be decoded \(broken data stream"):
        build_coco([path], decode_images=True)  # ...decoding can


def test_embedded_image_data_is_the_image(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(buffer, format="PNG")
    path = _labelme_pair(tmp_path, "a", [_shape("a", SQUARE)], imageData=base64.b64encode(buffer.getvalue()).decode(),
                         imagePath="C:\\labelme\\photos\\a.png")
    (tmp_path / "a.png").unlink()
    build = build_coco([path])
    assert build.images == [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}]
    assert build.sources["a.png"].path is None
    write_coco_dataset(build, {"a.png": "train"}, tmp_path / "out")
    assert (tmp_path / "out" / "images" / "a.png").read_bytes() == buffer.getvalue()


def _rotated_jpeg(path: Path, size: tuple[int, int], orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    image = Image.new("RGB", size, (200, 10, 10))
    image.paste((10, 200, 10), (0, 0, 5, 5))  # a mark in the stored top-left corner
    image.save(path, format="JPEG", exif=exif, quality=100)


def test_exif_rotation_is_applied_as_labelme_does(tmp_path: Path) -> None:
    # Stored 40 x 30 with orientation 6 (rotate 90 degrees clockwise): labelme shows, and records, 30 x 40.
    path = _labelme_pair(tmp_path, "a", [_shape("a", SQUARE)], size=(30, 40), imagePath="a.jpg")
    _rotated_jpeg(tmp_path / "a.jpg", (40, 30), 6)
    build = build_coco([path])
    assert build.images[0]["width"] == 30 and build.images[0]["height"] == 40
    write_coco_dataset(build, {"a.jpg": "train"}, tmp_path / "out")
    with Image.open(tmp_path / "out" / "images" / "a.jpg") as written:
        assert written.size == (30, 40)  # stored upright, as annotated
        assert written.getexif().get(0x0112, 1) == 1
        assert written.getpixel((27, 2))[1] > 150  # the mark turned to the top-right corner
    # Annotated on the stored pixels (a tool that ignores EXIF): refused, with the reason.
    unrotated = _labelme_pair(tmp_path, "b", [_shape("a", SQUARE)], size=(40, 30), imagePath="b.jpg")
    _rotated_jpeg(tmp_path / "b.jpg", (40, 30), 6)
    with pytest.raises(InputError, match=r"is 30x40 once rotated as its EXIF says; the image has an EXIF rotation"):
        build_coco([unrotated])


def _noise_jpeg(path: Path, size: tuple[int, int], **save: object) -> bytes:
    """A JPEG of noise of more than 100 kB: more than labelme2coco reads of it when nothing asks
    for every byte (its header and its end)."""
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=95, **save)
    data = path.read_bytes()
    assert len(data) > 100_000
    return data


def _big_jpeg(case: str, path: Path) -> tuple[int, int]:
    """Write case's JPEG to `path`; the size (width, height) its annotation declares."""
    if case == "exif-rotated":
        exif = Image.Exif()
        exif[0x0112] = 6
        _noise_jpeg(path, (480, 360), exif=exif)
        return 360, 480
    data = _noise_jpeg(path, (480, 360), icc_profile=os.urandom(100_000) if case == "long-header" else None)
    if case == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif case == "nul-padded":  # some cameras and copies pad the file after its end marker
        path.write_bytes(data + bytes(20_000))
    elif case == "garbage":
        path.write_bytes(data[:2] + os.urandom(len(data)))
    return 480, 360


@pytest.mark.parametrize(("case", "from_ends", "expected"), [
    ("plain", True, ""), ("exif-rotated", True, ""), ("truncated", True, "image 'a.jpg' is truncated (no end marker)"),
    ("nul-padded", False, ""), ("long-header", False, ""), ("garbage", False, "image 'a.jpg' is not an image file"),
])
def test_large_jpegs_are_judged_from_their_ends_as_from_every_byte(tmp_path: Path, case: str, from_ends: bool,
                                                                  expected: str) -> None:
    # Without digests or decoding, a large JPEG is judged from its header and end (faster); where
    # those do not tell, from the whole file. The verdict is the same either way.
    from steps.datasets.labelme_convert import ConvertSettings, _jpeg_facts, convert_file

    width, height = _big_jpeg(case, tmp_path / "a.jpg")
    path = _labelme_pair(tmp_path, "a", [_shape("a", SQUARE)], size=(width, height), imagePath="a.jpg")
    assert (_jpeg_facts(tmp_path / "a.jpg") is not None) == from_ends
    from_header = convert_file(path, ConvertSettings(hash_images=False))
    whole = convert_file(path, ConvertSettings(hash_images=True))
    assert from_header.errors == whole.errors
    if expected:
        assert len(whole.errors) == 1 and whole.errors[0].startswith(expected), whole.errors
    else:
        assert not whole.errors and (from_header.width, from_header.height) == (width, height)
        assert from_header.instances == whole.instances
        assert from_header.source.rewrite == whole.source.rewrite == (case == "exif-rotated")


def test_images_are_ordered_by_name_whatever_the_input_order(tmp_path: Path) -> None:
    paths = [_labelme_pair(tmp_path, name, [_shape("a", SQUARE)]) for name in ("c", "a", "b")]
    build = build_coco(paths)
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in build.images] == [
        (1, "a.png", 40, 30),
        (2, "b.png", 40, 30),
        (3, "c.png", 40, 30),
    ]
    assert build.sources["b.png"].path == tmp_path / "b.png"
    assert build.sources["b.png"].sha256 == __import__("hashlib").sha256((tmp_path / "b.png").read_bytes()).hexdigest()
    assert build_coco(list(reversed(paths))) == build


def test_worker_processes_give_the_same_result(tmp_path: Path) -> None:
    paths = [_labelme_pair(tmp_path, f"img{i}", [_shape("a", SQUARE), _shape("b", [[5, 5], [9, 5], [7, 9]])])
             for i in range(6)]
    paths.append(_bad_file(tmp_path, "two-points"))
    serial = build_coco(paths, root=tmp_path, on_invalid="skip", workers=1)
    parallel = build_coco(paths, root=tmp_path, on_invalid="skip", workers=2)
    assert parallel == serial
    assert len(serial.images) == 6 and [s.file for s in serial.skipped] == ["bad.json"]


def _three_images(folder: Path) -> list[Path]:
    return [
        _labelme_pair(folder, "a", [_shape("x", SQUARE), _shape("y", SQUARE)]),
        _labelme_pair(folder, "b", [_shape("x", SQUARE)]),
        _labelme_pair(folder, "c", [_shape("y", SQUARE), _shape("y", SQUARE), _shape("x", SQUARE)]),
    ]


def test_write_dataset_splits_files_copies_images_and_reports(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    files = [*_three_images(tmp_path / "src"), _bad_file(tmp_path / "src", "collinear")]
    build = build_coco(files, root=tmp_path / "src", on_invalid="skip")
    split = {"a.png": "train", "b.png": "val", "c.png": "test"}
    counts = write_coco_dataset(build, split, tmp_path / "out")
    assert counts == {"train": 1, "val": 1, "test": 1}
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == ["a.png", "b.png", "c.png"]
    per_split = {name: json.loads((tmp_path / "out" / f"{name}.json").read_text()) for name in split.values()}
    assert [len(per_split[s]["annotations"]) for s in ("train", "val", "test")] == [2, 1, 3]
    ids = [a["id"] for coco in per_split.values() for a in coco["annotations"]]
    assert sorted(ids) == [1, 2, 3, 4, 5, 6]
    for coco in per_split.values():
        assert coco["categories"] == build.categories
        image_ids = {image["id"] for image in coco["images"]}
        assert all(a["image_id"] in image_ids for a in coco["annotations"])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["images"] == 3 and report["annotations"] == 6
    assert report["split"] == {"test": 1, "train": 1, "val": 1}
    assert report["skipped"] == [{"file": "bad.json", "reason": build.skipped[0].reason}]
    assert "encloses no area" in build.skipped[0].reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no staging folder left


def test_write_two_splits_with_linked_images(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    build = build_coco(_three_images(tmp_path / "src"))
    write_coco_dataset(build, {"a.png": "train", "b.png": "val", "c.png": "train"}, tmp_path / "out",
                       splits=("train", "val"), link=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["images", "report.json", "train.json", "val.json"]
    assert os.stat(tmp_path / "out" / "images" / "a.png").st_ino == os.stat(tmp_path / "src" / "a.png").st_ino
    with pytest.raises(ValueError, match="no train/val split for"):
        write_coco_dataset(build, {"a.png": "train", "b.png": "test", "c.png": "train"}, tmp_path / "o2",
                           splits=("train", "val"))


def test_write_dataset_is_byte_identical_and_replaces_old_output(tmp_path: Path) -> None:
    from steps.datasets.coco import split_images

    (tmp_path / "src").mkdir()
    build = build_coco(_three_images(tmp_path / "src"))
    split = split_images([i["file_name"] for i in build.images], 0.34, 0.0, seed=0)
    write_coco_dataset(build, split, tmp_path / "one")
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "stale.txt").write_text("from an older version")
    write_coco_dataset(build, split, tmp_path / "two")
    for name in ("train.json", "val.json", "test.json", "report.json", "images/a.png"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert not (tmp_path / "two" / "stale.txt").exists()
    assert json.loads((tmp_path / "two" / "test.json").read_text())["images"] == []


def test_failed_write_leaves_previous_output_untouched(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    build = build_coco(_three_images(tmp_path / "src"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train.json").write_text("previous")
    (tmp_path / "src" / "c.png").unlink()  # the copy fails halfway
    with pytest.raises(ExternalError, match=r"writing the dataset failed: No such file or directory \(.*c\.png\); "
                       r"the previous dataset there is unchanged$"):
        write_coco_dataset(build, {"a.png": "train", "b.png": "train", "c.png": "val"}, tmp_path / "out")
    assert (tmp_path / "out" / "train.json").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy 2 vs pycocotools, not ours
def test_written_dataset_loads_in_pycocotools(tmp_path: Path) -> None:
    coco_api = pytest.importorskip("pycocotools.coco")
    (tmp_path / "src").mkdir()
    build = build_coco(_three_images(tmp_path / "src"))
    write_coco_dataset(build, {"a.png": "train", "b.png": "train", "c.png": "train"}, tmp_path / "out")
    coco = coco_api.COCO(str(tmp_path / "out" / "train.json"))
    assert len(coco.getAnnIds()) == 6
    mask = coco.annToMask(coco.loadAnns([1])[0])
    assert mask.shape == (30, 40) and int(mask.sum()) == 16  # the 4x4 square, rasterised


def test_split_is_deterministic_disjoint_and_order_independent() -> None:
    from steps.datasets.coco import split_images

    names = [f"img_{i:03d}.jpg" for i in range(50)]
    split = split_images(names, 0.2, 0.1, seed=7)
    assert sorted(split) == sorted(names)  # every image exactly once
    assert list(split.values()).count("val") == 10 and list(split.values()).count("test") == 5
    assert split_images(list(reversed(names)), 0.2, 0.1, seed=7) == split
    assert split_images(names, 0.2, 0.1, seed=8) != split
    # Adding images moves few of the existing ones: only those the new ones push out of val/test.
    grown = split_images([*names, *(f"new_{i}.jpg" for i in range(5))], 0.2, 0.1, seed=7)
    moved = [name for name in names if grown[name] != split[name]]
    assert len(moved) <= 3


def test_split_keeps_one_val_and_test_image_when_asked() -> None:
    from steps.datasets.coco import split_images

    names = ["a", "b", "c"]
    split = split_images(names, 0.01, 0.01, seed=0)
    assert sorted(split.values()) == ["test", "train", "val"]
    assert set(split_images(names, 0.0, 0.0, seed=0).values()) == {"train"}
    assert split_images(["a"], 0.5, 0.3, seed=0) == {"a": "train"}


def test_split_rejects_fractions_adding_up_to_one() -> None:
    from steps.datasets.coco import split_images

    with pytest.raises(ConfigError, match="add up to less than 1"):
        split_images(["a", "b"], 0.6, 0.4, seed=0)


def test_split_is_stratified_by_the_rarest_category(tmp_path: Path) -> None:
    from steps.datasets.coco import image_strata, split_images

    common = [_labelme_pair(tmp_path, f"c{i:02d}", [_shape("car", SQUARE)]) for i in range(20)]
    rare = [_labelme_pair(tmp_path, f"r{i:02d}", [_shape("car", SQUARE), _shape("bus", SQUARE)]) for i in range(10)]
    empty = [_labelme_pair(tmp_path, "e", [])]
    build = build_coco([*common, *rare, *empty])
    strata = image_strata(build)
    assert strata["c00.png"] == "car" and strata["r00.png"] == "bus" and strata["e.png"] == ""  # bus is in fewer images
    for seed in range(5):
        split = split_images(sorted(strata), 0.2, 0.1, seed, strata=strata)
        # 31 images: val round(6.2) = 6, test round(3.1) = 3, shared in proportion:
        # car 20 -> val 4, test 2; bus 10 -> val 2, test 1; the lone empty image stays in train.
        val = sorted(name[0] for name, part in split.items() if part == "val")
        test = sorted(name[0] for name, part in split.items() if part == "test")
        assert (val, test) == (["c"] * 4 + ["r"] * 2, ["c"] * 2 + ["r"])
        assert split["e.png"] == "train"


def test_stratified_split_totals_are_exact_for_any_strata() -> None:
    import random

    from steps.datasets.coco import split_counts, split_images

    rng = random.Random(0)
    for _ in range(200):
        sizes = [rng.randint(1, 12) for _ in range(rng.randint(1, 6))]
        names = [f"{s}-{i}" for s, size in enumerate(sizes) for i in range(size)]
        strata = {name: name.split("-")[0] for name in names}
        val, test = rng.choice([0.0, 0.1, 0.2, 0.3]), rng.choice([0.0, 0.1, 0.25])
        split = split_images(names, val, test, seed=rng.randint(0, 9), strata=strata)
        parts = list(split.values())
        assert (parts.count("val"), parts.count("test")) == split_counts(len(names), val, test)
        assert parts.count("train") >= 1


def test_a_conversion_without_image_hashes_writes_the_same_dataset(tmp_path: Path) -> None:
    # `trainyard labelme2coco` skips the SHA-256 that only the record step stores.
    (tmp_path / "src").mkdir()
    files = _three_images(tmp_path / "src")
    hashed = build_coco(files, root=tmp_path / "src")
    plain = build_coco(files, root=tmp_path / "src", hash_images=False)
    assert (plain.images, plain.annotations, plain.categories) == (hashed.images, hashed.annotations, hashed.categories)
    assert all(len(source.sha256 or "") == 64 for source in hashed.sources.values())
    assert all(source.sha256 is None for source in plain.sources.values())
    split = {"a.png": "train", "b.png": "train", "c.png": "val"}
    for name, build in (("hashed", hashed), ("plain", plain)):
        write_coco_dataset(build, split, tmp_path / name)
    for split_name in ("train", "val"):
        assert (tmp_path / "plain" / f"{split_name}.json").read_bytes() == (tmp_path / "hashed" / f"{split_name}.json").read_bytes()
