"""Extreme values and images that decode two ways: a bad file is one reason and is skipped alone,
never a traceback; what record checked is what train decodes; labels that print alike are named."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from steps import registry
from steps.datasets.coco import build_coco, write_coco_dataset
from steps.config import load_config
from steps.errors import ConfigError, ExternalError, InputError
from steps.datasets.image_decode import decode_rgb, load_rgb
from steps.models.coco_dataset import load_image
from tests.test_hostile_data import _doc as labelme_doc, _write
from workflows.cli import main

SQUARE = [[1, 1], [9, 1], [9, 9], [1, 9]]
HUGE = "9" * 5000  # more digits than Python converts (4300)


def _doc(image_path: str, size: tuple[int, int] = (40, 30), labels: tuple[str, ...] = ("a",), **extra: object) -> dict:
    shapes = [{"label": label, "points": SQUARE, "shape_type": "polygon"} for label in labels]
    return {**labelme_doc(image_path, size, **extra), "shapes": shapes}


def _good(folder: Path, name: str = "good", labels: tuple[str, ...] = ("a",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (90, 90, 90)).save(folder / f"{name}.png")
    return _write(folder / f"{name}.json", _doc(f"{name}.png", labels=labels))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _with_late_exif(png: bytes, orientation: int) -> bytes:
    """`png` with an eXIf chunk after its image data (PIL's header reader does not see it there)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    tiff = exif.tobytes().removeprefix(b"Exif\x00\x00")
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    end = png.rindex(b"IEND") - 4
    return png[:end] + chunk + png[end:]


def _pattern(width: int, height: int) -> Image.Image:
    """An image whose every turn and flip differs."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[: height // 3, : width // 4] = (250, 0, 0)
    pixels[height // 2:, width // 2:] = (0, 0, 250)
    return Image.fromarray(pixels)


# --- hostile values in labelme files: each skipped with its reason, the others recorded ----------------

HOSTILE = {
    "nul-in-image-path": lambda ann: _write(ann / "x.json", _doc("good\0.png")),
    "huge-integer-size": lambda ann: _write(ann / "x.json", json.dumps(_doc("good.png")).replace(
        '"imageHeight": 30', f'"imageHeight": {HUGE}')),
    "huge-integer-point": lambda ann: _write(ann / "x.json", json.dumps(_doc("good.png")).replace(
        "[[1, 1]", f"[[{HUGE}, 1]", 1)),
    "long-label": lambda ann: _write(ann / "x.json", _doc("good.png", labels=("p" * 200_000,))),
    "line-break-in-label": lambda ann: _write(ann / "x.json", _doc("good.png", labels=("a\nfake log line",))),
    "too-many-objects": lambda ann: _write(ann / "x.json", _doc("good.png", labels=("a",) * 1001)),
}
REASONS = {
    "nul-in-image-path": "imagePath: contains a control character",
    "huge-integer-size": "holds a number of thousands of digits",
    "huge-integer-point": "holds a number of thousands of digits",
    "long-label": "a label of 200,000 characters; labels are names of at most 128",
    "line-break-in-label": "contains a control character",
    "too-many-objects": "has 1,001 objects, more than dataset.max_instances_per_image (1,000)",
}


@pytest.mark.parametrize("case", HOSTILE)
def test_an_extreme_value_skips_its_file_alone_with_the_reason(case: str, tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    _good(ann)
    HOSTILE[case](ann)
    build = build_coco(sorted(ann.glob("*.json")), on_invalid="skip", root=ann, workers=1)
    assert [item.file for item in build.skipped] == ["x.json"]
    assert REASONS[case] in build.skipped[0].reason and len(build.skipped[0].reason) < 400
    assert [image["file_name"] for image in build.images] == ["good.png"]


def test_an_embedded_image_whose_path_names_no_file_is_named_after_its_json(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    _good(ann)
    embedded = base64.b64encode(_png(Image.new("RGB", (40, 30), (10, 200, 10)))).decode()
    _write(ann / "scan.json", _doc("sub/..", imageData=embedded))
    build = build_coco(sorted(ann.glob("*.json")), on_invalid="skip", root=ann, workers=1)
    assert sorted(image["file_name"] for image in build.images) == ["good.png", "scan.png"] and not build.skipped
    write_coco_dataset(build, {"good.png": "train", "scan.png": "val"}, tmp_path / "out")
    assert Image.open(tmp_path / "out" / "images" / "scan.png").getpixel((0, 0)) == (10, 200, 10)


def test_a_bound_on_objects_per_image_is_a_record_setting(tmp_path: Path) -> None:
    assert load_config(None, ["dataset.max_instances_per_image=3"]).dataset.max_instances_per_image == 3
    ann = tmp_path / "ann"
    _good(ann, labels=("a",) * 4)
    with pytest.raises(InputError, match=r"has 4 objects, more than dataset.max_instances_per_image \(3\)"):
        build_coco(sorted(ann.glob("*.json")), root=ann, workers=1, max_instances=3)


# --- images decode one way, in record and in train --------------------------------------------------

def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped_to_white(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    ramp = (np.arange(30 * 40, dtype=np.uint32).reshape(30, 40) * 54 + 1000).astype(np.uint16)  # 1000..65746
    ann.mkdir()
    Image.fromarray(ramp).save(ann / "deep.png")
    _write(ann / "deep.json", _doc("deep.png"))
    build = build_coco([ann / "deep.json"], root=ann, workers=1)
    write_coco_dataset(build, {"deep.png": "train"}, tmp_path / "out")

    for path in (ann / "deep.png", tmp_path / "out" / "images" / "deep.png"):  # train on either
        pixels = np.asarray(load_image(path))
        assert pixels.shape == (30, 40, 3) and pixels.min() < 10 and pixels.max() > 245, path
        assert np.abs(pixels[..., 0].astype(int) - np.round(ramp / 257)).max() <= 1
    assert Image.open(tmp_path / "out" / "images" / "deep.png").mode == "RGB"


def test_exif_orientation_after_the_image_data_is_applied_by_record_and_train_alike(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    ann.mkdir()
    stored = _pattern(40, 30)
    (ann / "turned.png").write_bytes(_with_late_exif(_png(stored), orientation=6))
    _write(ann / "turned.json", _doc("turned.png", size=(30, 40)))  # as labelme shows it: turned upright
    build = build_coco([ann / "turned.json"], root=ann, workers=1)
    assert not build.skipped and build.images[0]["width"] == 30 and build.images[0]["height"] == 40
    write_coco_dataset(build, {"turned.png": "train"}, tmp_path / "out")

    shown = np.asarray(stored.transpose(Image.Transpose.ROTATE_270))
    assert np.array_equal(np.asarray(load_rgb(ann / "turned.png")), shown)
    assert np.array_equal(np.asarray(load_image(tmp_path / "out" / "images" / "turned.png")), shown)
    # The dataset holds it upright, without the orientation: any reader sees the annotated view.
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "images" / "turned.png").convert("RGB")), shown)


def test_an_image_without_a_faithful_8_bit_form_is_refused(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    _good(ann)
    Image.fromarray(np.linspace(-1e6, 1e6, 1200, dtype=np.float32).reshape(30, 40)).save(ann / "x.tif")
    _write(ann / "x.json", _doc("x.tif"))
    build = build_coco(sorted(ann.glob("*.json")), on_invalid="skip", root=ann, workers=1)
    assert [item.file for item in build.skipped] == ["x.json"]
    assert "has 'F' pixels" in build.skipped[0].reason
    with pytest.raises(InputError, match="has 'F' pixels"):
        load_image(ann / "x.tif")
    with pytest.raises(ValueError):
        decode_rgb((ann / "x.tif").read_bytes())


# --- labels: one form, and look-alikes named ---------------------------------------------------------

def test_labels_are_one_class_whatever_their_unicode_form(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    _good(ann, "composed", labels=("caf\u00e9",))
    _good(ann, "decomposed", labels=("cafe\u0301",))
    build = build_coco(sorted(ann.glob("*.json")), root=ann, workers=1)
    assert [c["name"] for c in build.categories] == ["caf\u00e9"]
    assert load_config(None, ["dataset.labels=['cafe\u0301']"]).dataset.labels == ["caf\u00e9"]
    assert load_config(None, ["evaluate.plate_label=cafe\u0301"]).evaluate.plate_label == "caf\u00e9"


def test_labels_that_print_alike_are_named_in_a_warning(tmp_path: Path) -> None:
    ann = tmp_path / "ann"
    _good(ann, "latin", labels=("A", "0", "O"))
    _good(ann, "cyrillic", labels=("\u0410",))  # CYRILLIC CAPITAL LETTER A
    _good(ann, "wide", labels=("\uff21",))  # FULLWIDTH LATIN CAPITAL LETTER A
    build = build_coco(sorted(ann.glob("*.json")), root=ann, workers=1)
    alike = [w for w in build.warnings if "look alike" in w]
    assert len(alike) == 3 and all("U+0041" in w or "U+0410" in w for w in alike)
    assert any("U+0410" in w and "U+FF21" in w for w in alike)
    assert not any("'0'" in w for w in alike), "ASCII look-alikes (0 and O) are a plate dataset's classes"


def test_a_label_too_long_or_with_a_line_break_is_refused_in_the_config_and_labels_file(tmp_path: Path) -> None:
    from steps.datasets.labelme import read_labels_file

    with pytest.raises(ConfigError, match="at most 128"):
        load_config(None, ["dataset.labels=[" + "x" * 300 + "]"])
    labels = tmp_path / "labels.txt"
    labels.write_text("__ignore__\nplate\n" + "y" * 129 + "\n")
    with pytest.raises(ConfigError, match=r"labels.txt: a label of 129 characters"):
        read_labels_file(labels)


# --- numbers too large for the readers of results and registry files --------------------------------

def test_coco_eval_refuses_a_huge_integer_and_a_huge_declared_image_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = {"images": [{"id": 1, "width": 40, "height": 30, "file_name": "a.png"}], "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8], "area": 64, "iscrowd": 0,
                           "segmentation": [[1, 1, 9, 1, 9, 9, 1, 9]]}]}
    results = [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8], "score": 0.9}]
    _write(tmp_path / "gt.json", gt)
    _write(tmp_path / "huge-id.json", json.dumps(results).replace('"image_id": 1', f'"image_id": {HUGE}'))
    assert main(["coco-eval", str(tmp_path / "gt.json"), str(tmp_path / "huge-id.json")]) == 2
    err = capsys.readouterr().err
    assert "holds a number of thousands of digits" in err and err.count("\n") == 1

    gt["images"][0].update(width=30_000_000, height=30_000_000)
    _write(tmp_path / "vast.json", gt)
    _write(tmp_path / "results.json", results)
    for iou_type in ("bbox", "segm"):
        assert main(["coco-eval", "--iou-type", iou_type, str(tmp_path / "vast.json"), str(tmp_path / "results.json")]) == 2
        err = capsys.readouterr().err
        assert "images[0]: declares a 30000000x30000000 image, more than" in err and err.count("\n") == 1


def test_a_production_pointer_with_a_huge_integer_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "production.json").write_text(f'{{"model_id": "m1", "promoted_at": {HUGE}}}')
    with pytest.raises(ExternalError, match="production.json: registry file is not valid JSON"):
        registry.production(str(tmp_path))
