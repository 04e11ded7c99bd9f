"""A labelme annotation file, read without labelme itself (which pulls in Qt).

Only what the pipeline needs is typed; labelme writes more keys (and newer versions add some),
so unknown keys are kept, not rejected.
"""

from __future__ import annotations

import json
from pathlib import Path, PureWindowsPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from steps.errors import InputError

ShapeType = Literal["polygon", "rectangle", "circle", "line", "point", "linestrip", "points", "mask"]

# Shapes whose points have a fixed count in labelme's format: (allowed counts, what they mean).
_POINT_COUNTS: dict[str, tuple[tuple[int, ...], str]] = {
    "rectangle": ((2, 4), "2 opposite corners (or 4 corners)"),
    "circle": ((2,), "the center and a point on the circle"),
    "line": ((2,), "its 2 ends"),
    "point": ((1,), "1 point"),
}


class LabelmeShape(BaseModel):
    model_config = ConfigDict(extra="allow")

    label: str
    # Declared before `points` so the points validator can see it.
    shape_type: ShapeType = "polygon"
    points: list[tuple[float, float]]
    group_id: int | None = None
    flags: dict[str, Any] | None = Field(default_factory=dict)
    description: str | None = ""

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
    shapes: list[LabelmeShape] = Field(default_factory=list)
    # Relative to the JSON file's folder; labelme on Windows writes backslashes.
    imagePath: str
    # Base64 copy of the image that labelme can embed; not used here (the image file is).
    imageData: str | None = None
    imageHeight: int = Field(gt=0)
    imageWidth: int = Field(gt=0)


def image_path(json_path: Path, labelme: LabelmeFile) -> Path:
    """The image file a labelme JSON refers to, resolved relative to the JSON's folder."""
    relative = labelme.imagePath
    if "\\" in relative:
        relative = PureWindowsPath(relative).as_posix()
    return json_path.parent / relative


def _field_name(loc: tuple[int | str, ...]) -> str:
    # ('shapes', 3, 'points') -> 'shapes[3].points'
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{_field_name(error['loc'])}: {message}"


def load_labelme(path: Path) -> LabelmeFile:
    """Read and validate one labelme JSON file and check that its image exists."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate a BOM (Windows editors)
    except FileNotFoundError:
        raise InputError(f"{path}: labelme file not found") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file; expected a labelme JSON file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with labelme keys (shapes, imagePath, ...)")
    try:
        labelme = LabelmeFile.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(_describe(err) for err in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise InputError(f"{path}: not a valid labelme file: {problems}{more}") from None
    image = image_path(path, labelme)
    if not image.is_file():
        raise InputError(
            f"{path}: image {labelme.imagePath!r} not found (looked for {image}); "
            "put the image beside the JSON or fix imagePath"
        )
    return labelme
