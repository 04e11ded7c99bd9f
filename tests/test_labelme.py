from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from steps.errors import ConfigError, InputError
from steps.datasets.labelme import category_names, embedded_image, image_path, load_labelme, read_labels_file


def _labelme(image: str = "a.jpg", shapes: list[dict] | None = None, **extra: object) -> dict:
    doc = {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes if shapes is not None else [{"label": "plate", "points": [[1, 1], [9, 1], [9, 5]]}],
        "imagePath": image,
        "imageData": None,
        "imageHeight": 8,
        "imageWidth": 10,
    }
    doc.update(extra)
    return doc


def _write(folder: Path, doc: dict, name: str = "a.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    Image.new("RGB", (10, 8)).save(tmp_path / "a.jpg")
    return tmp_path


def test_valid_file_loads_and_keeps_unknown_keys(folder: Path) -> None:
    doc = _labelme(lineColor=[0, 255, 0], otherData={"x": 1})
    doc["shapes"][0]["mask"] = None  # newer labelme writes this per shape
    labelme = load_labelme(_write(folder, doc))
    assert labelme.imageWidth == 10 and labelme.imageHeight == 8
    assert labelme.shapes[0].points == [(1.0, 1.0), (9.0, 1.0), (9.0, 5.0)]
    assert labelme.model_extra == {"lineColor": [0, 255, 0], "otherData": {"x": 1}}


def test_optional_fields_may_be_missing_or_null(folder: Path) -> None:
    doc = _labelme(shapes=[{"label": "x", "points": [[0, 0], [1, 0], [1, 1]], "group_id": None, "flags": None}])
    del doc["imageData"], doc["version"]
    labelme = load_labelme(_write(folder, doc))
    assert labelme.imageData is None
    assert labelme.shapes[0].shape_type == "polygon"


def test_not_json_names_file_line_and_column(folder: Path) -> None:
    path = folder / "broken.json"
    path.write_text('{\n  "version": "5.5.0",\n  "shapes": [,]\n}\n')
    with pytest.raises(InputError) as error:
        load_labelme(path)
    message = str(error.value)
    assert str(path) in message and "line 3, column 14" in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.json: labelme file not found"):
        load_labelme(tmp_path / "nope.json")


def test_wrong_schema_names_the_field(folder: Path) -> None:
    shapes = [
        {"label": "a", "points": [[0, 0], [1, 0], [1, 1]]},
        {"label": "b", "points": [[0, 0], [1, "x"], [1, 1]]},
    ]
    expected = r"a\.json: not a valid labelme file: shapes\[1\]\.points\[1\]\[1\]: Input should be a valid number"
    with pytest.raises(InputError, match=expected):
        load_labelme(_write(folder, _labelme(shapes=shapes)))


def test_missing_required_key_and_bad_shape_type(folder: Path) -> None:
    doc = _labelme(shapes=[{"label": "a", "points": [[0, 0]], "shape_type": "blob"}])
    del doc["imageWidth"]
    with pytest.raises(InputError) as error:
        load_labelme(_write(folder, doc))
    assert "shapes[0].shape_type" in str(error.value)
    assert "imageWidth: Field required" in str(error.value)


def test_point_count_must_fit_the_shape_type(folder: Path) -> None:
    doc = _labelme(shapes=[{"label": "a", "points": [[0, 0], [1, 1], [2, 2]], "shape_type": "circle"}])
    with pytest.raises(InputError, match=r"shapes\[0\]\.points: a circle needs the center and a point"):
        load_labelme(_write(folder, doc))


def test_top_level_must_be_an_object(folder: Path) -> None:
    path = folder / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="list.json: expected a JSON object"):
        load_labelme(path)


def test_missing_image_is_an_error(folder: Path) -> None:
    with pytest.raises(InputError, match=r"a\.json: image 'gone\.jpg' not found"):
        load_labelme(_write(folder, _labelme(image="gone.jpg")))


def test_image_path_is_relative_to_the_json_even_with_backslashes(folder: Path) -> None:
    (folder / "ann").mkdir()
    (folder / "img").mkdir()
    Image.new("RGB", (10, 8)).save(folder / "img" / "b.png")
    path = _write(folder / "ann", _labelme(image="..\\img\\b.png"), "b.json")
    labelme = load_labelme(path, root=folder)  # the annotation folder holds both subfolders
    assert image_path(path, labelme) == folder / "ann" / ".." / "img" / "b.png"
    assert image_path(path, labelme).resolve() == (folder / "img" / "b.png").resolve()


def test_embedded_image_data_needs_no_image_file(folder: Path) -> None:
    import base64
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (10, 8)).save(buffer, format="PNG")
    doc = _labelme(image="elsewhere/not-here.png", imageData=base64.b64encode(buffer.getvalue()).decode())
    labelme = load_labelme(_write(folder, doc))
    assert embedded_image(labelme) == buffer.getvalue()
    with pytest.raises(InputError, match=r"a\.json: imageData: not valid base64"):
        load_labelme(_write(folder, _labelme(imageData="not base64!")))


def test_oriented_rectangle_and_mask_shapes_are_known(folder: Path) -> None:
    shapes = [
        {"label": "a", "points": [[0, 0], [4, 1], [3, 5], [-1, 4]], "shape_type": "oriented_rectangle"},
        {"label": "b", "points": [[1, 1], [3, 3]], "shape_type": "mask", "mask": "iVBORw0KGgo="},
    ]
    labelme = load_labelme(_write(folder, _labelme(shapes=shapes)))
    assert [s.shape_type for s in labelme.shapes] == ["oriented_rectangle", "mask"]
    bad = [{"label": "a", "points": [[0, 0], [4, 1], [3, 5]], "shape_type": "oriented_rectangle"}]
    with pytest.raises(InputError, match=r"shapes\[0\]\.points: a oriented_rectangle needs its 4 corners"):
        load_labelme(_write(folder, _labelme(shapes=bad)))


def test_labels_file_follows_labelme_conventions(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("__ignore__\n_background_\nplate\n\nlicense plate\n  car  \n")
    assert read_labels_file(path) == ["plate", "license plate", "car"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("__ignore__\n_background_\na\nb\na\n", r"labels\.txt: 'a' listed more than once"),
        ("__ignore__\n_background_\n", r"labels\.txt: no labels"),
    ],
    ids=["repeated", "empty"],
)
def test_bad_labels_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.txt"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        read_labels_file(path)
    with pytest.raises(ConfigError, match=r"nope\.txt: labels file not found"):
        read_labels_file(tmp_path / "nope.txt")


def test_reserved_labels_are_not_categories() -> None:
    assert category_names(["__ignore__", "_background_", "b", "a"]) == ["b", "a"]
    with pytest.raises(ConfigError, match=r"dataset\.labels: 'b' listed more than once"):
        category_names(["b", "a", "b"])


@pytest.mark.parametrize("levels", [31, 32, 33])
def test_nesting_is_refused_past_max_depth_exactly(levels: int) -> None:
    # The file's object is level 1 and `flags` level 2; the value in flags makes up the rest.
    from steps.datasets.labelme import MAX_DEPTH, LabelmeFormatError, parse_labelme

    value: object = 1
    for k in range(levels - 2):
        value = [value] if k % 2 else {"k": value}
    raw = json.dumps(_labelme(flags={"deep": value})).encode()
    if levels <= MAX_DEPTH:
        assert parse_labelme(raw).flags == {"deep": value}
    else:
        with pytest.raises(LabelmeFormatError, match=f"nested more than {MAX_DEPTH} levels deep"):
            parse_labelme(raw)
