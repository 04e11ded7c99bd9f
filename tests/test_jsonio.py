"""read_json reads what the standard library reads, and refuses with its messages."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from steps.errors import InputError
from steps.jsonio import read_json


@pytest.mark.parametrize("text", [
    '{"images": [{"id": 1, "height": 480, "width": 640}], "score": 0.30000000000000004, "name": "\\u00e9\\ud83d\\ude00"}',
    '[1, -0, 1e-320, 18446744073709551615, -9223372036854775808, 2.5e+300, true, null, "x"]',
    '{"a": 1, "a": 2}',
    '[' * 500 + ']' * 500,
])
def test_values_are_the_standard_librarys(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(text, encoding="utf-8")
    assert read_json(path, "test") == json.loads(text)


def test_what_orjson_refuses_is_read_as_json_reads_it(tmp_path: Path) -> None:
    # NaN and a number beyond a double: json reads them (the checks then name the field), so the
    # file reads the same as before.
    path = tmp_path / "x.json"
    path.write_text("[NaN, Infinity, 1e400]")
    nan, inf, big = read_json(path, "test")
    assert math.isnan(nan) and inf == big == math.inf
    path.write_text("[" + "9" * 5000 + "]")
    with pytest.raises(InputError, match=r"x\.json: holds a number of thousands of digits; not a test file"):
        read_json(path, "test")
    path.write_bytes(b"\xef\xbb\xbf[1]")  # a byte order mark: neither reads it
    with pytest.raises(InputError, match=r"x\.json: not valid JSON \(line 1, column 1\)"):
        read_json(path, "test")
