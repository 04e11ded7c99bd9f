"""Strict JSON files: NaN and infinities (e.g. AP of a class with no ground truth) become null.

Python's json writes NaN, which browsers, jq and most other readers reject. And no secret: every
string written is redacted (a URL's credentials, steps/redact.py).
"""

from __future__ import annotations

import gc
import json
import math
from pathlib import Path
from typing import Any

from steps.errors import InputError
from steps.redact import redact


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
    """Strict JSON text of `value`: non-finite floats as null, every string redacted."""
    return json.dumps(_clean(value), indent=indent, allow_nan=False, default=lambda other: redact(str(other)))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_clean(key) if isinstance(key, str) else key: _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return value


def write_json(path: Path, value: Any, indent: int | None = 2) -> Path:
    path.write_text(dumps(value, indent=indent))
    return path


def read_json(path: Path, what: str, missing_hint: str = "") -> Any:
    """The parsed JSON file `path`; an InputError naming it (and `what` it should be) when it is
    missing, unreadable, not UTF-8 or not JSON. `missing_hint` follows "not found"."""
    if not path.is_file():
        raise InputError(f"{path}: {what} file not found{'; ' + missing_hint if missing_hint else ''}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    parsed = _fast_loads(data)
    if parsed is not _REFUSED:
        return parsed
    try:  # the standard library's reading, and its messages, for what orjson refused
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except ValueError:  # an integer of more than 4300 digits, which Python refuses to convert
        raise InputError(f"{path}: holds a number of thousands of digits; not a {what} file") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply to be a {what} file") from None


_REFUSED = object()


def _fast_loads(data: bytes) -> Any:
    """orjson's reading of `data` (a few times the standard library's speed), or _REFUSED.

    orjson refuses what json reads leniently (NaN, numbers beyond a double, nesting past 1,024)
    and gives other messages; read_json then reads with json, so the errors stay the standard
    library's (and the values too, but for integers beyond 64 bits, which orjson reads as
    floats: no id, size or coordinate is one). No cyclic garbage collection meanwhile: it would walk the new
    objects again and again (a third of the time, on a results file of tens of thousands).
    """
    import orjson

    enabled = gc.isenabled()
    gc.disable()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _REFUSED
    finally:
        if enabled:
            gc.enable()
