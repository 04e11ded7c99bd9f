"""`withItems` / `withParam` on a DAG task, and the fan-in of the children's outputs, as Argo
v4.1.2's controller does them (controller/dag.go `expandTask`, operator.go `processItem`,
`generateNodeName`, `processAggregateNodeOutputs`, `aggregatedJSONValueList`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from workflows.local.templating import ErrorValue, TemplateError


class _Number(str):
    """A JSON number kept as its literal text: Argo's Item is raw JSON, printed as written."""


@dataclass(frozen=True)
class Expansion:
    name: str  # the child's node name, `task(index:description)`
    index: int
    values: dict[str, str]  # `item` and, for a map item, `item.<key>`


def parse_items(text: str, where: str) -> list:
    """dag.go expandTask: withParam must be a JSON list; anything else is the task's error."""
    try:
        items = json.loads(text, parse_int=_Number, parse_float=_Number)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"withParam value could not be parsed as a JSON list: {text.strip()}: {exc}") from None
    if not isinstance(items, list):
        raise TemplateError(f"withParam value could not be parsed as a JSON list: {text.strip()}: "
                            f"cannot unmarshal {type(items).__name__} into a list ({where})")
    return items


def _raw(value: object) -> str:
    """Item.String(): the normalised JSON, a string without its quotes."""
    if isinstance(value, str) and not isinstance(value, _Number):
        return value
    return _json(value)


def _json(value: object) -> str:
    # encoding/json: map keys sorted, compact; numbers as their literal.
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    if isinstance(value, list):
        return "[" + ",".join(_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json(str(k))}:{_json(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    raise TemplateError(f"item {value!r}: expected string, number, list, or map")


def _node_name(task: str, index: int, description: str) -> str:
    # operator.go generateNodeName: parentheses dropped from the description, index first.
    return f"{task}({index}:{description.replace('(', '').replace(')', '')})"


def expand(task: str, items: list) -> list[Expansion]:
    """operator.go processItem: `{{item}}` (and `{{item.KEY}}` for a map) and each child's name."""
    children = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            values = {f"item.{key}": _raw(value) for key, value in item.items()}
            description = ",".join(sorted(f"{key}:{_raw(value)}" for key, value in item.items()))
            values["item"] = _json(item)
        elif isinstance(item, list):
            values = {"item": _json(item)}
            # fmt.Sprint of a []Item: `[a b]`, each element by its String().
            description = "[" + " ".join(_raw(v) for v in item) + "]"
        elif item is None:
            raise TemplateError(f"withItems[{index}] expected string, number, list, or map. received: null")
        else:
            values = {"item": _raw(item)}
            description = values["item"]
        children.append(Expansion(_node_name(task, index, description), index, values))
    return children


def group_phase(phases: list[str]) -> str:
    """dag.go executeDAGTask: the TaskGroup is Succeeded unless a child failed or errored (the
    last such child's phase); an empty list is Skipped ("Skipped, empty params")."""
    if not phases:
        return "Skipped"
    phase = "Succeeded"
    for child in phases:
        if child in ("Failed", "Error"):
            phase = child
    return phase


def aggregate(children: list[tuple[str, dict[str, str | None]]]) -> dict[str, str]:
    """processAggregateNodeOutputs: over the Succeeded children in index order, each output
    parameter as a JSON list (`tasks.T.outputs.parameters.P`) and all of them as a list of maps
    (`tasks.T.outputs.parameters`)."""
    per_name: dict[str, list[str]] = {}
    maps: list[dict[str, str]] = []
    for phase, parameters in children:
        if phase != "Succeeded" or not parameters:
            continue
        values = {name: value or "" for name, value in parameters.items()}
        maps.append(values)
        for name, value in values.items():
            per_name.setdefault(name, []).append(value)
    out = {name: _value_list(values) for name, values in per_name.items()}
    out[""] = _json(maps)
    return out


def aggregate_results(children: list[tuple[str, str | None]]) -> str | None:
    """processAggregateNodeOutputs: the Succeeded children's `outputs.result`, each parsed as JSON,
    as one JSON list (`tasks.T.outputs.result`); a result that is not JSON is Argo's error where
    the list is used; no child with a result, no list."""
    results = [result for phase, result in children if phase == "Succeeded" and result is not None]
    if not results:
        return None
    parsed = []
    for result in results:
        try:
            parsed.append(json.loads(result, parse_int=_Number, parse_float=_Number))
        except json.JSONDecodeError as exc:
            return ErrorValue(f"unable to processAggregateNodeOutputs: {result[:80]!r} is not JSON ({exc.msg})")
    return _json(parsed)


def _value_list(values: list[str]) -> str:
    """aggregatedJSONValueList: a list of the parsed values when every one is a JSON list or map,
    else a list of the strings."""
    parsed = []
    for value in values:
        try:
            item = json.loads(value, parse_int=_Number, parse_float=_Number)
        except json.JSONDecodeError:
            return _json(values)
        if not isinstance(item, (list, dict)):
            return _json(values)
        parsed.append(item)
    return _json(parsed)


_GO_INT_VERB = re.compile(r"%[-+ 0#]*\d*[dxXob]")
MAX_SEQUENCE = 100_000  # items a sequence may make here: each is a pod


def sequence(seq: dict, values: dict[str, str | None], where: str) -> list:
    """operator.go expandSequence: `start` (0) to `end`, or `count` items from `start`, each the
    string `fmt.Sprintf(format, i)` (format "%d"); counting down when start > end."""
    from workflows.local.templating import NotSupported, substitute

    def number(key: str) -> int:
        text = substitute(str(seq[key]), values, f"{where}.withSequence.{key}").strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise TemplateError(f'strconv.Atoi: parsing "{text}": invalid syntax')
        return int(text)

    start = number("start") if "start" in seq else 0
    if "end" in seq:
        end = number("end")
    elif "count" in seq:
        count = number("count")
        if count == 0:
            return []
        end = start + count - 1
    else:
        raise TemplateError("neither end nor count was specified in withSequence")
    if abs(end - start) >= MAX_SEQUENCE:
        raise NotSupported(f"{where}.withSequence: {abs(end - start) + 1} items: more than the local runner runs")
    fmt = str(seq.get("format") or "%d")
    if len(_GO_INT_VERB.findall(fmt)) != 1 or fmt.replace("%%", "").count("%") != 1:
        raise NotSupported(f"{where}.withSequence.format {fmt!r}: only one integer verb (%d, %02d, %x, ...) locally")
    step = 1 if start <= end else -1
    return [fmt % i for i in range(start, end + step, step)]
