"""Findings and where in a manifest they point, written one way throughout.

A path reads like `spec.templates[name=main].dag.tasks[name=b].depends`: dict keys joined by
dots (quoted when they are not plain words, e.g. `labels["app.kubernetes.io/name"]`), list
items shown by their `name` when they have one and by their 0-based index otherwise
(`steps[0][name=hello]`, `args[1]`).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


class Finding(NamedTuple):
    """One problem found in a manifest, before it is tied to a file; `target` is the manifest it
    lies in when that is another one than the manifest being checked (see crossdoc)."""

    path: str
    message: str
    target: Any = None


def key_path(base: str, key: object) -> str:
    """Path of the value under `key` in the mapping at `base`."""
    text = str(key)
    if _PLAIN_KEY.match(text):
        return f"{base}.{text}" if base else text
    return f'{base}["{text}"]'


def item_path(base: str, index: int, item: Any) -> str:
    """Path of `item`, the `index`-th element of the list at `base`."""
    name = item.get("name") if isinstance(item, dict) else None
    if isinstance(name, str) and name and "]" not in name:
        return f"{base}[name={name}]"
    return f"{base}[{index}]"


def excerpt(value: object, limit: int = 40) -> str:
    """A value as quoted in a message: never more than `limit` characters of it (a hostile or
    alias-expanded value must not flood the terminal)."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
