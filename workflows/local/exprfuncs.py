"""The functions an Argo expression can call (util/expr/env/env.go GetFuncMap): expr-lang's
builtins (github.com/expr-lang/expr builtin), Argo's `asInt`, `asFloat` and `toJson`, and the sprig
functions under `sprig.` that are here. A function not listed is refused by name by expr.py.

Functions that take a predicate (`filter(list, {# > 1})`) get it as a Python callable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from workflows.local.templating import TemplateError


class ExprError(TemplateError):
    """An expression Argo would reject, or one this runner does not evaluate."""


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def go_json(value: Any) -> str:
    """encoding/json.Marshal: compact, map keys sorted, <, > and & escaped, UTF-8 kept."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _as_int(value: Any) -> int:
    if isinstance(value, str):  # expr's builtin int: strconv.Atoi
        if not re.fullmatch(r"[+-]?\d+", value):
            raise ExprError(f"invalid operation: int({value})")
        return int(value)
    if is_number(value):
        return int(value)
    raise ExprError(f"invalid operation: int({value!r})")


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ExprError(f"invalid operation: float({value!r})") from None


def _list(value: Any, name: str) -> list:
    if not isinstance(value, list):
        raise ExprError(f"{name}: expected an array, got {type(value).__name__}")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ExprError(f"{name}: the predicate gave {value!r}, not a boolean")
    return value


def _get(container: Any, key: Any) -> Any:
    """expr's get(): a map's value or a list's element, nil when there is none."""
    if isinstance(container, dict):
        return container.get(key)
    if isinstance(container, list) and is_number(key) and -len(container) <= int(key) < len(container):
        return container[int(key)]
    return None


def _from_json(text: Any) -> Any:
    try:
        return json.loads(str(text))
    except ValueError as exc:
        raise ExprError(f"fromJSON: {exc}") from None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "asInt": _as_int, "int": _as_int, "asFloat": _as_float, "float": _as_float,
    "string": lambda v: v if isinstance(v, str) else go_json(v) if isinstance(v, (list, dict)) else str(v),
    "len": len, "toJson": go_json, "toJSON": go_json, "fromJSON": _from_json, "get": _get,
    "join": lambda items, sep="": sep.join(str(i) for i in _list(items, "join")),
    "split": lambda text, sep: str(text).split(sep),
    "upper": lambda v: str(v).upper(), "lower": lambda v: str(v).lower(), "trim": lambda v: str(v).strip(),
    "concat": lambda *lists: [item for items in lists for item in _list(items, "concat")],
    "keys": lambda m: list(m), "values": lambda m: list(m.values()),
    "first": lambda items: items[0] if items else None, "last": lambda items: items[-1] if items else None,
    "abs": abs, "max": max, "min": min,
}
# The ones that take a predicate, called with the list and a function of one element.
PREDICATES: dict[str, Callable[[list, Callable[[Any], Any]], Any]] = {
    "filter": lambda items, f: [i for i in _list(items, "filter") if _bool(f(i), "filter")],
    "map": lambda items, f: [f(i) for i in _list(items, "map")],
    "all": lambda items, f: all(_bool(f(i), "all") for i in _list(items, "all")),
    "any": lambda items, f: any(_bool(f(i), "any") for i in _list(items, "any")),
    "none": lambda items, f: not any(_bool(f(i), "none") for i in _list(items, "none")),
    "one": lambda items, f: sum(_bool(f(i), "one") for i in _list(items, "one")) == 1,
    "count": lambda items, f: sum(_bool(f(i), "count") for i in _list(items, "count")),
    "find": lambda items, f: next((i for i in _list(items, "find") if _bool(f(i), "find")), None),
}

# Go's reference-time layout elements, longest first, as strftime directives (in UTC, the
# controller's zone).
_GO_LAYOUT = [("January", "%B"), ("Monday", "%A"), ("2006", "%Y"), ("-07:00", "+00:00"), ("-0700", "+0000"),
              ("Jan", "%b"), ("Mon", "%a"), ("MST", "UTC"), ("15", "%H"), ("01", "%m"), ("02", "%d"),
              ("03", "%I"), ("04", "%M"), ("05", "%S"), ("06", "%y"), ("PM", "%p"), ("_2", "%e")]


def _go_date(layout: str, when: Any) -> str:
    """sprig's date: a time.Time or a Unix time formatted by a Go layout; anything else (a string,
    as Argo's variables are) is formatted as now (sprig dateInZone's default)."""
    moment = datetime.fromtimestamp(when, timezone.utc) if is_number(when) else datetime.now(timezone.utc)
    out, pos = [], 0
    while pos < len(layout):
        for element, directive in _GO_LAYOUT:
            if layout.startswith(element, pos):
                out.append(moment.strftime(directive) if directive.startswith("%") else directive)
                pos += len(element)
                break
        else:
            out.append(layout[pos])
            pos += 1
    return "".join(out)


# util/expr/env/env.go: sprig's functions under `sprig.` (these here).
SPRIG: dict[str, Callable[..., Any]] = {
    "sha256sum": lambda v: hashlib.sha256(str(v).encode()).hexdigest(),
    "replace": lambda old, new, text: str(text).replace(str(old), str(new)),
    "date": _go_date, "upper": lambda v: str(v).upper(), "lower": lambda v: str(v).lower(),
    "trim": lambda v: str(v).strip(), "toString": lambda v: v if isinstance(v, str) else str(v),
}
