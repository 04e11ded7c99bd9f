"""Strict JSON files: NaN and infinities (e.g. AP of a class with no ground truth) become null.

Python's json writes NaN, which browsers, jq and most other readers reject.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON text of `value`: non-finite floats as null."""
    return json.dumps(finite(value), indent=indent, allow_nan=False, default=str)


def write_json(path: Path, value: Any, indent: int | None = 2) -> Path:
    path.write_text(dumps(value, indent=indent))
    return path
