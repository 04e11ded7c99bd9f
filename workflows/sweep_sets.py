"""A sweep's override sets: the `sweep` parameter of `trainyard-sweep`, one branch per item.

Given as a YAML file, either a list of override sets (each a mapping `key: value`) or a grid
(`grid: {train.lr: [0.01, 0.02], model.backbone: [resnet34, resnet50]}`: every combination), or
on the command line as a grid string: `train.lr=[0.01,0.02] model.backbone=[resnet34,resnet50]`.
The parameter is a JSON list of `{"branch": "b0", "overrides": "train.lr=0.01 ..."}`, which
Argo's `withParam` fans out over (`{{item.branch}}`, `{{item.overrides}}`).
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from steps import safe_yaml
from steps.errors import InputError

KEY = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$")
MAX_BRANCHES = 32  # each branch trains on its own GPU node: a typo in a grid must not order 1000


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, (dict, list)):
        raise InputError(f"{where}: expected a single value (string or number), got {value!r}")
    text = str(value)
    if not text or any(ch in text for ch in "\n\r\0"):
        raise InputError(f"{where}: empty value or a line break; give one value per key")
    return text


def _set(mapping: Any, where: str) -> str:
    if not isinstance(mapping, dict) or not mapping:
        raise InputError(f"{where}: expected a mapping of config keys to values, e.g. {{train.lr: 0.01}}")
    pairs = []
    for key, value in mapping.items():
        if not isinstance(key, str) or not KEY.match(key):
            raise InputError(f"{where}: {key!r} is not a config key (section.field, e.g. train.lr)")
        pairs.append(f"{key}={_value(value, f'{where}.{key}')}")
    return shlex.join(pairs)


def _grid(grid: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(grid, dict) or not grid:
        raise InputError(f"{where}: expected a mapping of config keys to lists of values")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"{where}.{key}: expected a non-empty list of values, e.g. [0.01, 0.02]")
    return [dict(zip(grid, combination)) for combination in itertools.product(*grid.values())]


def branches(sets: list[str]) -> list[dict[str, str]]:
    if not sets:
        raise InputError("sweep: no override sets; give at least one")
    if len(sets) > MAX_BRANCHES:
        raise InputError(f"sweep: {len(sets)} branches, at most {MAX_BRANCHES}; narrow the grid")
    return [{"branch": f"b{index}", "overrides": overrides} for index, overrides in enumerate(sets)]


def from_file(path: Path) -> list[dict[str, str]]:
    """The branches of a sweep file: a list of override sets, or `grid:`."""
    where = str(path)
    try:
        data = safe_yaml.load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{where}: cannot read the sweep file: {str(exc).splitlines()[0]}") from None
    if isinstance(data, dict) and set(data) == {"grid"}:
        return branches([_set(s, f"{where}: grid") for s in _grid(data["grid"], f"{where}: grid")])
    if not isinstance(data, list):
        raise InputError(f"{where}: expected a list of override sets or `grid:` with lists of values")
    return branches([_set(s, f"{where}: [{i}]") for i, s in enumerate(data)])


def from_grid(text: str) -> list[dict[str, str]]:
    """`train.lr=[0.01,0.02] model.backbone=[resnet34,resnet50]`: every combination."""
    grid: dict[str, list[str]] = {}
    for item in text.split():
        key, sep, values = item.partition("=")
        if not sep or not (values.startswith("[") and values.endswith("]")):
            raise InputError(f"sweep grid {item!r}: expected KEY=[V1,V2,...]")
        grid[key] = [v.strip() for v in values[1:-1].split(",") if v.strip()]
    return branches([_set(s, "sweep grid") for s in _grid(grid, "sweep grid")])


def parameter(branch_list: list[dict[str, str]]) -> str:
    return json.dumps(branch_list, separators=(",", ":"))
