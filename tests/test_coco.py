from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from steps.coco import build_coco, polygon_area, split_images, write_coco_dataset
from steps.errors import ConfigError, InputError


def _shape(label: str, points: list[list[float]], shape_type: str = "polygon", group_id: int | None = None) -> dict:
    return {"label": label, "points": points, "group_id": group_id, "shape_type": shape_type, "flags": {}}


def _labelme_pair(folder: Path, name: str, shapes: list[dict], size: tuple[int, int] = (40, 30)) -> Path:
    """Write `name`.png of `size` (width, height) and `name`.json annotating it."""
    Image.new("RGB", size, (90, 90, 90)).save(folder / f"{name}.png")
    doc = {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": f"{name}.png",
        "imageData": None,
        "imageHeight": size[1],
        "imageWidth": size[0],
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


SQUARE = [[0, 0], [4, 0], [4, 4], [0, 4]]  # area 16


def test_polygon_area_by_hand() -> None:
    assert polygon_area([0, 0, 4, 0, 4, 3]) == 6.0  # right triangle 4 x 3
    assert polygon_area([0, 0, 0, 4, 4, 4, 4, 0]) == 16.0  # clockwise counts the same


def test_group_id_merges_shapes_of_one_label(tmp_path: Path) -> None:
    far_square = [[10, 10], [12, 10], [12, 13], [10, 13]]  # area 6
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
    assert merged["area"] == 22.0
    assert merged["bbox"] == [0, 0, 12, 13]
    assert (wheel["category_id"], single["category_id"]) == (2, 1)
    assert [a["id"] for a in build.annotations] == [1, 2, 3]


def test_rectangle_and_circle(tmp_path: Path) -> None:
    path = _labelme_pair(
        tmp_path,
        "a",
        [_shape("r", [[5, 2], [1, 8]], "rectangle"), _shape("c", [[20, 15], [20, 25]], "circle")],
    )
    rectangle, circle = build_coco([path]).annotations
    assert rectangle["segmentation"] == [[5, 2, 1, 2, 1, 8, 5, 8]]
    assert rectangle["area"] == 24.0 and rectangle["bbox"] == [1, 2, 4, 6]
    points = circle["segmentation"][0]
    assert len(points) == 64
    # A regular 32-gon inscribed in radius 10: area = 32/2 * r^2 * sin(2*pi/32) = 312.14...
    assert circle["area"] == pytest.approx(16 * 100 * math.sin(2 * math.pi / 32), abs=0.05)
    assert circle["bbox"] == pytest.approx([10, 5, 20, 20], abs=0.01)


def test_line_and_point_are_skipped_with_a_warning(tmp_path: Path) -> None:
    path = _labelme_pair(
        tmp_path,
        "a",
        [_shape("a", SQUARE), _shape("crack", [[0, 0], [5, 5]], "line"), _shape("dot", [[1, 1]], "point")],
    )
    build = build_coco([path])
    assert len(build.annotations) == 1
    assert [c["name"] for c in build.categories] == ["a"]  # skipped labels make no category
    assert len(build.warnings) == 2
    assert str(path) in build.warnings[0] and "shape 1 ('crack')" in build.warnings[0] and "line" in build.warnings[0]


def test_size_mismatch_with_image_header(tmp_path: Path) -> None:
    path = _labelme_pair(tmp_path, "a", [_shape("a", SQUARE)])
    Image.new("RGB", (41, 30)).save(tmp_path / "a.png")  # the image was replaced after labelling
    with pytest.raises(InputError, match=r"a\.json: imageWidth x imageHeight is 40x30 but a\.png is 41x30"):
        build_coco([path])


@pytest.mark.parametrize(
    "points",
    [[[0, 0], [4, 4], [0, 0]], [[0, 0], [2, 2], [4, 4]]],
    ids=["two-distinct-points", "collinear"],
)
def test_degenerate_polygon_names_file_and_shape(tmp_path: Path, points: list[list[float]]) -> None:
    path = _labelme_pair(tmp_path, "a", [_shape("a", SQUARE), _shape("b", points)])
    with pytest.raises(InputError, match=r"a\.json: shape 1 \('b'\) encloses no area"):
        build_coco([path])


def test_labels_fix_category_order_and_reject_unknown_labels(tmp_path: Path) -> None:
    path = _labelme_pair(tmp_path, "a", [_shape("b", SQUARE), _shape("a", SQUARE)])
    build = build_coco([path], labels=["b", "a", "unused"])
    assert build.categories == [
        {"id": 1, "name": "b", "supercategory": ""},
        {"id": 2, "name": "a", "supercategory": ""},
        {"id": 3, "name": "unused", "supercategory": ""},
    ]
    assert [a["category_id"] for a in build.annotations] == [1, 2]
    with pytest.raises(InputError, match=r"a\.json: shape 1 has label 'a', which is not in dataset\.labels"):
        build_coco([path], labels=["b"])
    with pytest.raises(ConfigError, match="'b' listed more than once"):
        build_coco([path], labels=["b", "a", "b"])


def test_duplicate_image_names_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    first = _labelme_pair(tmp_path / "x", "a", [_shape("a", SQUARE)])
    second = _labelme_pair(tmp_path / "y", "a", [_shape("a", SQUARE)])
    with pytest.raises(InputError, match="image name 'a.png' is also used by"):
        build_coco([first, second])


def test_images_are_ordered_by_name_whatever_the_input_order(tmp_path: Path) -> None:
    paths = [_labelme_pair(tmp_path, name, [_shape("a", SQUARE)]) for name in ("c", "a", "b")]
    build = build_coco(paths)
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in build.images] == [
        (1, "a.png", 40, 30),
        (2, "b.png", 40, 30),
        (3, "c.png", 40, 30),
    ]
    assert build.sources["b.png"] == tmp_path / "b.png"
    assert build_coco(list(reversed(paths))) == build


def test_split_is_deterministic_disjoint_and_order_independent() -> None:
    names = [f"img_{i:03d}.jpg" for i in range(50)]
    split = split_images(names, 0.2, 0.1, seed=7)
    assert sorted(split) == sorted(names)  # every image exactly once
    assert list(split.values()).count("val") == 10 and list(split.values()).count("test") == 5
    assert split_images(list(reversed(names)), 0.2, 0.1, seed=7) == split
    assert split_images(names, 0.2, 0.1, seed=8) != split


def test_split_keeps_one_val_and_test_image_when_asked() -> None:
    names = ["a", "b", "c"]
    split = split_images(names, 0.01, 0.01, seed=0)
    assert sorted(split.values()) == ["test", "train", "val"]
    assert set(split_images(names, 0.0, 0.0, seed=0).values()) == {"train"}
    assert split_images(["a"], 0.5, 0.3, seed=0) == {"a": "train"}


def test_split_rejects_fractions_adding_up_to_one() -> None:
    with pytest.raises(ConfigError, match="add up to less than 1"):
        split_images(["a", "b"], 0.6, 0.4, seed=0)


def _three_images(folder: Path) -> list[Path]:
    return [
        _labelme_pair(folder, "a", [_shape("x", SQUARE), _shape("y", SQUARE)]),
        _labelme_pair(folder, "b", [_shape("x", SQUARE)]),
        _labelme_pair(folder, "c", [_shape("y", SQUARE), _shape("y", SQUARE), _shape("x", SQUARE)]),
    ]


def test_write_dataset_splits_files_and_copies_images(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    build = build_coco(_three_images(tmp_path / "src"))
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no staging folder left


def test_write_dataset_is_byte_identical_and_replaces_old_output(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    build = build_coco(_three_images(tmp_path / "src"))
    split = split_images([i["file_name"] for i in build.images], 0.34, 0.0, seed=0)
    write_coco_dataset(build, split, tmp_path / "one")
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "stale.txt").write_text("from an older version")
    write_coco_dataset(build, split, tmp_path / "two")
    for name in ("train.json", "val.json", "test.json", "images/a.png"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert not (tmp_path / "two" / "stale.txt").exists()
    assert json.loads((tmp_path / "two" / "test.json").read_text())["images"] == []


def test_failed_write_leaves_previous_output_untouched(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    build = build_coco(_three_images(tmp_path / "src"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train.json").write_text("previous")
    (tmp_path / "src" / "c.png").unlink()  # the copy fails halfway
    with pytest.raises(FileNotFoundError):
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
