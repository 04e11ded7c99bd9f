"""Per-class results from the flat metric keys: the configured class groups first, then each class.

The mean over every class hides what a model does on the classes that matter: on the plate sample
data the plate class is found long before 10 small digit classes are. `evaluate.class_groups`
names the groups a dataset cares about (`{plate: [plate], characters: ["*"]}` for plates); a
dataset without groups gets one row per class. Each row carries its support (instances and
images of the split), so that a figure on 3 instances is read as such.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

COLUMNS = ("AP", "AP50", "AP75")
REST = "*"  # in a group: every class no other group names


@dataclass(frozen=True)
class Support:
    instances: int
    images: int


@dataclass(frozen=True)
class ClassRow:
    name: str
    kind: str  # "group" | "class"
    values: dict[str, float]  # column -> value, NaN when not measured
    support: Support | None = None


def class_names(metrics: Mapping[str, object], iou_type: str = "segm") -> list[str]:
    prefix = f"{iou_type}/AP-"
    return [key[len(prefix):] for key in metrics if key.startswith(prefix)]


def group_members(names: Sequence[str], groups: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Each group's classes among `names`, in `names`' order; groups with none are left out.

    "*" (the rest) is relative to the named classes: on a dataset that has none of them it forms
    no group, so `{plate: [plate], characters: ["*"]}` leaves a dataset without plates with its
    per-class rows, never "characters (mean of N)" of classes that are not characters."""
    named = {name for members in groups.values() for name in members if name != REST}
    rest = bool(named & set(names))
    members = {}
    for group, wanted in groups.items():
        chosen = [n for n in names if n in wanted or (rest and REST in wanted and n not in named)]
        if chosen:
            members[str(group)] = chosen
    return members


def support(gt: Mapping[str, object]) -> dict[str, Support]:
    """Instances and images of each category of a COCO ground truth, by name."""
    names = {int(c["id"]): str(c["name"]) for c in gt.get("categories", [])}  # type: ignore[union-attr]
    instances: dict[str, int] = dict.fromkeys(names.values(), 0)
    images: dict[str, set[int]] = {name: set() for name in names.values()}
    for ann in gt.get("annotations", []):  # type: ignore[union-attr]
        name = names.get(int(ann["category_id"]))
        if name is not None:
            instances[name] += 1
            images[name].add(int(ann["image_id"]))
    return {name: Support(instances[name], len(images[name])) for name in names.values()}


def group_support(members: Sequence[str], per_class: Mapping[str, Support], gt: Mapping[str, object] | None) -> Support | None:
    """A group's instances (summed) and images (that hold any of its classes)."""
    if not per_class:
        return None
    instances = sum(per_class[m].instances for m in members if m in per_class)
    if gt is None:
        return Support(instances, max((per_class[m].images for m in members if m in per_class), default=0))
    ids = {int(c["id"]) for c in gt.get("categories", []) if c["name"] in members}  # type: ignore[union-attr]
    return Support(instances, len({int(a["image_id"]) for a in gt.get("annotations", []) if int(a["category_id"]) in ids}))  # type: ignore[union-attr]


def class_rows(metrics: Mapping[str, object], groups: Mapping[str, Sequence[str]] | None = None,
               gt: Mapping[str, object] | None = None, iou_type: str = "segm") -> list[ClassRow]:
    """One row per group (its class, or the mean of its classes), then one row per class.

    A group that is exactly one class of its own name (`plate: [plate]`) is not repeated below.
    `gt`: the split's ground truth, for each row's support."""
    names = class_names(metrics, iou_type)
    per_class = support(gt) if gt is not None else {}

    def values(name: str) -> dict[str, float]:
        return {col: _number(metrics.get(f"{iou_type}/{col}-{name}")) for col in COLUMNS}

    rows, shown = [], set()
    for group, members in group_members(names, groups or {}).items():
        if members == [group]:
            shown.add(group)
            rows.append(ClassRow(group, "group", values(group), per_class.get(group)))
            continue
        mean = {col: _mean([values(name)[col] for name in members]) for col in COLUMNS}
        label = f"{group} (mean of {len(members)})" if len(members) > 1 else f"{group} ({members[0]})"
        rows.append(ClassRow(label, "group", mean, group_support(members, per_class, gt)))
    return rows + [ClassRow(name, "class", values(name), per_class.get(name))
                   for name in sorted(names, key=_natural) if name not in shown]


def group_values(metrics: Mapping[str, object], groups: Mapping[str, Sequence[str]] | None,
                 column: str = "AP50", iou_type: str = "segm") -> dict[str, float]:
    """`{group} mask AP50` for each configured group: what the summary and the tiles show."""
    names = class_names(metrics, iou_type)
    return {f"{group} mask {column}": _mean([_number(metrics.get(f"{iou_type}/{column}-{n}")) for n in members])
            for group, members in group_members(names, groups or {}).items()}


def headline(metrics: Mapping[str, object], groups: Mapping[str, Sequence[str]] | None) -> dict[str, float]:
    """The few numbers a reader looks at first: each group's mask AP50 (or, without groups, the
    mask AP50 and AP over every class), then dv_mAP and EIR where the dataset has them."""
    figures = group_values(metrics, groups) or {
        "mask AP50": _number(metrics.get("segm/AP50")), "mask AP": _number(metrics.get("segm/AP")),
        "box AP": _number(metrics.get("bbox/AP"))}
    for key in ("dv_mAP", "EIR"):
        if key in metrics:
            figures[key] = _number(metrics[key])
    return figures


def headline_keys(figure: str, groups: Mapping[str, Sequence[str]] | None, names: Sequence[str]) -> list[str]:
    """The metric keys a headline figure is the mean of (what a bootstrap recomputes)."""
    direct = {"mask AP50": "segm/AP50", "mask AP": "segm/AP", "box AP": "bbox/AP", "dv_mAP": "dv_mAP", "EIR": "EIR"}
    if figure in direct:
        return [direct[figure]]
    for group, members in group_members(names, groups or {}).items():
        if figure == f"{group} mask AP50":
            return [f"segm/AP50-{n}" for n in members]
    return []


def _natural(name: str) -> tuple:
    """`2` before `10`: digits compare as numbers."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan
