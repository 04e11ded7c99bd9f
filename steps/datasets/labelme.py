"""A labelme annotation file and a labelme labels file, read without labelme itself (which pulls in Qt).

Only what the pipeline needs is typed; labelme writes more keys (and newer versions add some),
so unknown keys are kept, not rejected. The semantics follow labelme's own reader: `imagePath` is
relative to the JSON file (backslashes from Windows allowed), and an embedded `imageData` is the
image (it wins over `imagePath`, as in labelme).

Annotation files are untrusted: an image is only read from inside the annotation folder (no
absolute `imagePath`, none leading out with `..` or through a symlink), only regular files are
read (a FIFO would block), and a file's size and nesting are bounded.
"""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
from pathlib import Path, PureWindowsPath
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from steps.confine import IsNotRegular, OutsideFolder, inside, is_absolute, regular_file
from steps.errors import ConfigError, InputError
from steps.labels import clean_label

ShapeType = Literal[
    "polygon", "rectangle", "oriented_rectangle", "circle", "line", "point", "linestrip", "points", "mask"
]

# Shapes whose points have a fixed count in labelme's format: (allowed counts, what they mean).
_POINT_COUNTS: dict[str, tuple[tuple[int, ...], str]] = {
    "rectangle": ((2, 4), "2 opposite corners (or 4 corners)"),
    "oriented_rectangle": ((4,), "its 4 corners"),
    "circle": ((2,), "the center and a point on the circle"),
    "line": ((2,), "its 2 ends"),
    "point": ((1,), "1 point"),
    "mask": ((2,), "the 2 corners of the mask's box"),
}

# Reserved names of labelme's labels files: `__ignore__` marks regions to ignore, `_background_`
# is class 0 of semantic segmentation. Neither is an object category.
IGNORE_LABEL = "__ignore__"
BACKGROUND_LABEL = "_background_"
RESERVED_LABELS = (IGNORE_LABEL, BACKGROUND_LABEL)

# A labelme file holds shapes and at most one embedded image; anything larger is not one. Read
# whole into memory (by worker processes at once), so bounded.
MAX_FILE_BYTES = 256 * 1024 * 1024
# labelme nests 4 levels (file, shapes, shape, points); `flags` may hold a little more. Deeper JSON is
# built to exhaust the parser's recursion.
MAX_DEPTH = 32


# A side of an image, in pixels (COCO readers and the metrics take 32-bit sizes).
MAX_SIDE = 2**31 - 1


class LabelmeFormatError(ValueError):
    """A labelme file is malformed; the message says where, without the file name."""


class LabelmeShape(BaseModel):
    model_config = ConfigDict(extra="allow")

    label: str
    # Declared before `points` so the points validator can see it.
    shape_type: ShapeType = "polygon"
    points: list[tuple[float, float]]
    group_id: int | None = None
    flags: dict[str, Any] | None = Field(default_factory=dict)
    description: str | None = ""
    # Base64 PNG of a `mask` shape, covering the box its 2 points span.
    mask: str | None = None

    @field_validator("label")
    @classmethod
    def _clean_label(cls, label: str) -> str:
        return clean_label(label)

    @field_validator("points")
    @classmethod
    def _count_fits_type(cls, points: list[tuple[float, float]], info: ValidationInfo) -> list[tuple[float, float]]:
        rule = _POINT_COUNTS.get(info.data.get("shape_type", ""))
        if rule and len(points) not in rule[0]:
            raise ValueError(f"a {info.data['shape_type']} needs {rule[1]}, got {len(points)} points")
        return points


class LabelmeFile(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: str = ""
    flags: dict[str, Any] | None = Field(default_factory=dict)
    # Required, as in labelme's own reader: a file without it is not an image with no objects.
    shapes: list[LabelmeShape]
    # Relative to the JSON file's folder; labelme on Windows writes backslashes.
    imagePath: str
    # Base64 copy of the image file that labelme can embed; when present it is the image.
    imageData: str | None = None
    imageHeight: int = Field(gt=0, le=MAX_SIDE)
    imageWidth: int = Field(gt=0, le=MAX_SIDE)

    @field_validator("imagePath")
    @classmethod
    def _one_line(cls, path: str) -> str:  # a NUL would break every file call, a line break the logs
        if any(unicodedata.category(ch) == "Cc" for ch in path):
            raise ValueError("contains a control character (a line break or NUL); fix the file name")
        return path


def image_path(json_path: Path, labelme: LabelmeFile) -> Path:
    """The image file a labelme JSON refers to, relative to the JSON's folder (not yet checked)."""
    relative = labelme.imagePath
    if "\\" in relative:
        relative = PureWindowsPath(relative).as_posix()
    return Path(json_path).parent / relative


def image_file(json_path: Path, labelme: LabelmeFile, root: Path) -> Path:
    """The image file of `imagePath`, resolved; LabelmeFormatError when it is absolute or its
    resolved path (symlinks followed) leaves `root`, the annotation folder."""
    if is_absolute(labelme.imagePath):
        raise LabelmeFormatError(
            f"imagePath {labelme.imagePath!r} is absolute (from another machine?); make it relative to the "
            f"JSON file, e.g. {image_name(labelme)!r}"
        )
    try:
        return inside(root, image_path(json_path, labelme), "annotation folder")
    except OutsideFolder as exc:
        raise LabelmeFormatError(f"imagePath {labelme.imagePath!r} {exc}; only images inside it are used") from None


def read_file(path: Path, root: Path) -> bytes:
    """The bytes of a labelme JSON file inside `root`; LabelmeFormatError when it is a symlink out
    of `root`, not a regular file (a FIFO would block) or too large; OSError when unreadable."""
    try:
        resolved = inside(root, path, "annotation folder")
    except OutsideFolder as exc:
        raise LabelmeFormatError(f"{exc}; only files inside it are read") from None
    try:
        regular_file(resolved)
    except IsNotRegular as exc:
        raise LabelmeFormatError(f"{exc}, not a labelme JSON file") from None
    with open(resolved, "rb") as file:
        raw = file.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise LabelmeFormatError(f"is larger than {MAX_FILE_BYTES // 2**20} MiB; not a labelme file")
    return raw


def image_name(labelme: LabelmeFile) -> str:
    """The image's file name (no folders), as it appears in a COCO dataset; "" when imagePath names
    no file (`sub/..`, `.`): the JSON file's own name is then used for an embedded image."""
    name = PureWindowsPath(labelme.imagePath).name if "\\" in labelme.imagePath else Path(labelme.imagePath).name
    return "" if name in (".", "..") else name


def embedded_image(labelme: LabelmeFile) -> bytes | None:
    """The bytes of the embedded image file, or None when the image is a separate file."""
    if not labelme.imageData:
        return None
    try:
        return base64.b64decode(labelme.imageData, validate=True)
    except (binascii.Error, ValueError):
        raise LabelmeFormatError("imageData: not valid base64; re-save the file in labelme") from None


def _field_name(loc: tuple[int | str, ...]) -> str:
    # ('shapes', 3, 'points') -> 'shapes[3].points'
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{_field_name(error['loc'])}: {message}"


def parse_labelme(raw: bytes) -> LabelmeFile:
    """Parse and validate the bytes of a labelme JSON file; raises LabelmeFormatError."""
    try:
        text = raw.decode("utf-8-sig")  # tolerate a BOM (Windows editors)
    except UnicodeDecodeError:
        raise LabelmeFormatError("not a UTF-8 text file; expected a labelme JSON file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelmeFormatError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except ValueError:  # an integer of more than 4300 digits: Python refuses to convert it
        raise LabelmeFormatError("holds a number of thousands of digits; not a labelme file") from None
    except RecursionError:  # deeper than the parser's stack: certainly deeper than MAX_DEPTH
        raise LabelmeFormatError(f"JSON nested more than {MAX_DEPTH} levels deep; not a labelme file") from None
    if not isinstance(data, dict):
        raise LabelmeFormatError("expected a JSON object with labelme keys (shapes, imagePath, ...)")
    if _depth(data) > MAX_DEPTH:
        raise LabelmeFormatError(f"JSON nested more than {MAX_DEPTH} levels deep; not a labelme file")
    try:
        return LabelmeFile.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(_describe(err) for err in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise LabelmeFormatError(f"not a valid labelme file: {problems}{more}") from None


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in parsed JSON, counted up to MAX_DEPTH + 1 (iterative:
    no recursion to exhaust). One level at a time, the containers of the next gathered in one
    comprehension: a file's many points are looked at, never pushed and popped one by one."""
    level, depth = ([value] if isinstance(value, (dict, list)) else []), 0
    while level and depth <= MAX_DEPTH:
        depth += 1
        level = [child for item in level for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, (dict, list))]
    return depth


def load_labelme(path: Path, root: Path | None = None) -> LabelmeFile:
    """Read and validate one labelme JSON file and check that its image exists inside `root`
    (the annotation folder; default: the JSON's folder)."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    try:
        labelme = parse_labelme(read_file(path, root))
        embedded_image(labelme)
        image = image_file(path, labelme, root) if labelme.imageData is None else None
    except FileNotFoundError:
        raise InputError(f"{path}: labelme file not found") from None
    except LabelmeFormatError as exc:
        raise InputError(f"{path}: {exc}") from None
    if image is not None and not image.is_file():
        raise InputError(
            f"{path}: image {labelme.imagePath!r} not found (looked for {image}); "
            "put the image beside the JSON or fix imagePath"
        )
    return labelme


def category_names(labels: list[str], source: str = "dataset.labels") -> list[str]:
    """Category names in id order (1..N): labelme's reserved names dropped, each label checked and
    in NFC (as labelme files' labels are), repeats refused."""
    try:
        labels = [clean_label(label) for label in labels]
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    names = [label for label in labels if label not in RESERVED_LABELS]
    repeated = sorted({label for label in names if names.count(label) > 1})
    if repeated:
        raise ConfigError(f"{source}: {', '.join(map(repr, repeated))} listed more than once")
    return names


def read_labels_file(path: Path) -> list[str]:
    """A labelme labels file: one label per line, in category id order.

    As in labelme's examples, `__ignore__` (usually the first line) and `_background_` are
    not categories; blank lines are skipped.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{path}: labels file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file; expected one label per line") from None
    names = category_names([line.strip() for line in lines if line.strip()], source=str(path))
    if not names:
        raise ConfigError(f"{path}: no labels (one per line; __ignore__ and _background_ do not count)")
    return names
