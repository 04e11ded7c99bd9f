"""Unknown keys and wrong types: a manifest walked against Hera's generated Argo models.

Argo's JSON schema leaves objects open, so a misspelled key passes it; Argo's strict decoder
(the one `argo lint` uses) rejects it. Hera's pydantic models are generated from Argo's OpenAPI
spec and know every field, so walking the manifest dict against them finds the same mistakes
offline. Where Go decodes more leniently than the generated types say (AnyString,
IntOrString, Quantity, named ports) the walk accepts what Go accepts: a false alarm is a bug.
"""

from __future__ import annotations

import difflib
import enum
import functools
import re
import types
import typing
from collections.abc import Iterator
from typing import Any

import pydantic
from hera.workflows import models as m

from workflows.lint.findings import Finding, excerpt, item_path, key_path
from workflows.lint.schema_v4 import EXTRA_FIELDS

KIND_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "Workflow": m.Workflow,
    "WorkflowTemplate": m.WorkflowTemplate,
    "CronWorkflow": m.CronWorkflow,
    "ClusterWorkflowTemplate": m.ClusterWorkflowTemplate,
}


class AnyString:
    """Argo's AnyString: a string field that also takes a YAML number or boolean as its text."""


# Go types that decode more than the generated annotation says.
_FIELD_OVERRIDES: dict[tuple[type, str], object] = {
    (m.Parameter, "default"): AnyString,
    (m.Parameter, "value"): AnyString,
    (m.Parameter, "description"): AnyString,
    (m.Parameter, "enum"): list[AnyString],
    (m.ValueFrom, "default"): AnyString,
    # Kubernetes takes a named port ("http") here; Hera 7.1 types it as an int.
    (m.HTTPGetAction, "port"): m.IntOrString,
}

# String fields whose values Argo's schema lists (in the field's description: "One of Always,
# Never, IfNotPresent"); Kubernetes refuses any other value when the pod is created. A value
# with a `{{...}}` tag is judged only once substituted, at run time.
_PULL_POLICIES = ("Always", "Never", "IfNotPresent")
_ENUMS: dict[tuple[type, str], tuple[str, ...]] = {
    **{(model, "imagePullPolicy"): _PULL_POLICIES
       for model in (m.Container, m.ScriptTemplate, m.UserContainer, m.ContainerNode)},
    (m.VolumeClaimGC, "strategy"): ("OnWorkflowCompletion", "OnWorkflowSuccess"),
    (m.WorkflowSpec, "dnsPolicy"): ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"),
    (m.PodSecurityContext, "fsGroupChangePolicy"): ("OnRootMismatch", "Always"),
    (m.PodSecurityContext, "seLinuxChangePolicy"): ("MountOption", "Recursive"),
    (m.PodSecurityContext, "supplementalGroupsPolicy"): ("Merge", "Strict"),
}

# Argo's Plugin decodes any mapping: the plugin's name and its own configuration.
_FREE_FORM_MODELS: frozenset[type] = frozenset({m.Plugin})

# The grammar Kubernetes gives for a resource quantity ("500m", "1.5Gi", "1e3").
_QUANTITY = re.compile(
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)))?$"
)


def check_manifest(doc: dict[str, Any], kind: str) -> list[Finding]:
    """Every unknown key and wrong type in `doc`, a manifest of the given supported kind."""
    return list(check_value(doc, KIND_MODELS[kind], ""))


def check_value(value: Any, annotation: Any, path: str) -> Iterator[Finding]:
    """Findings for `value` where the models expect `annotation`."""
    if value is None or annotation is Any:
        return  # Go decodes null into any field as "not set"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from check_value(value, args[0], path)
    elif origin in (typing.Union, types.UnionType):
        yield from _check_union(value, [a for a in args if a is not type(None)], path)
    elif origin is list:
        yield from _check_list(value, args[0] if args else Any, path)
    elif origin is dict:
        yield from _check_dict(value, args[1] if len(args) > 1 else Any, path)
    elif origin is typing.Literal:
        if value not in args:
            yield Finding(path, f"expected one of {_quoted(args)}, got {_show(value)}")
    elif isinstance(annotation, type):
        yield from _check_type(value, annotation, path)
    # Anything else is an annotation this walk does not know: accept rather than guess.


def _check_union(value: Any, arms: list[Any], path: str) -> Iterator[Finding]:
    if len(arms) == 1:
        yield from check_value(value, arms[0], path)
        return
    if any(not list(check_value(value, arm, path)) for arm in arms):
        return
    wanted = " or ".join(_describe(arm) for arm in arms)
    yield Finding(path, f"expected {wanted}, got {_show(value)}")


def _check_list(value: Any, item_type: Any, path: str) -> Iterator[Finding]:
    if not isinstance(value, list):
        yield Finding(path, f"expected a list, got {_show(value)}")
        return
    for index, item in enumerate(value):
        yield from check_value(item, item_type, item_path(path, index, item))


def _check_dict(value: Any, value_type: Any, path: str) -> Iterator[Finding]:
    if not isinstance(value, dict):
        yield Finding(path, f"expected a mapping, got {_show(value)}")
        return
    for key, item in value.items():
        yield from check_value(item, value_type, key_path(path, key))


def _check_type(value: Any, cls: type, path: str) -> Iterator[Finding]:
    if cls is AnyString:
        ok = isinstance(value, (str, int, float, bool))
    elif cls is m.Quantity:
        yield from _check_quantity(value, path)
        return
    elif cls is m.Time:
        ok = isinstance(value, str)
    elif issubclass(cls, pydantic.RootModel):
        yield from check_value(value, cls.model_fields["root"].annotation, path)
        return
    elif issubclass(cls, pydantic.BaseModel):
        yield from _check_object(value, cls, path)
        return
    elif issubclass(cls, enum.Enum):
        allowed = [member.value for member in cls]
        if value not in allowed:
            yield Finding(path, f"expected one of {_quoted(allowed)}, got {_show(value)}")
        return
    elif cls is bool:
        ok = isinstance(value, bool)
    elif cls is int:
        ok = _is_number(value) and float(value).is_integer()  # JSON 2.0 decodes into a Go int
    elif cls is float:
        ok = _is_number(value)
    elif cls is str:
        ok = isinstance(value, str)
    else:
        return  # a type this walk does not know: accept rather than guess
    if not ok:
        yield Finding(path, f"expected {_describe(cls)}, got {_show(value)}")


def _check_quantity(value: Any, path: str) -> Iterator[Finding]:
    if _is_number(value):
        return
    if not isinstance(value, str):
        yield Finding(path, f"expected a quantity such as 500m or 2Gi, got {_show(value)}")
    elif "{{" not in value and not _QUANTITY.match(value.strip()):
        yield Finding(path, f"{excerpt(value)!r} is not a Kubernetes quantity (e.g. 500m, 1.5, 2Gi)")


def _check_object(value: Any, model: type[pydantic.BaseModel], path: str) -> Iterator[Finding]:
    if not isinstance(value, dict):
        yield Finding(path, f"expected a mapping ({model.__name__}), got {_show(value)}")
        return
    if model in _FREE_FORM_MODELS:
        return
    fields = model_fields(model)
    for key, item in value.items():
        annotation = fields.get(str(key))
        if annotation is None:
            yield Finding(key_path(path, key), _unknown_key(str(key), model, fields))
            continue
        yield from check_value(item, annotation, key_path(path, key))
        allowed = _ENUMS.get((model, str(key)))
        if allowed and isinstance(item, str) and "{{" not in item and item not in allowed:
            close = difflib.get_close_matches(item, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            yield Finding(key_path(path, key), f"expected one of {_quoted(allowed)}, got {_show(item)}{hint}")


@functools.cache
def model_fields(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The manifest keys (camelCase aliases) of `model`, each with the type its value must have."""
    fields = {
        info.alias or name: _FIELD_OVERRIDES.get((model, info.alias or name), info.annotation)
        for name, info in model.model_fields.items()
    }
    fields.update(EXTRA_FIELDS.get(model, {}))
    return fields


def _unknown_key(key: str, model: type, fields: dict[str, Any]) -> str:
    message = f"unknown key {excerpt(key)!r} in {model.__name__}"
    close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
    if not close:
        close = [f for f in fields if f.lower() == key.lower()]
    return f"{message}; did you mean {close[0]!r}?" if close else message


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(annotation: Any) -> str:
    """A few words for what a value of `annotation` looks like."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if isinstance(annotation, type) and issubclass(annotation, pydantic.RootModel):
        return _describe(annotation.model_fields["root"].annotation)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return f"a mapping ({annotation.__name__})"
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        AnyString: "a string, number or boolean",
    }
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _show(value: Any) -> str:
    """How a wrong value is named in a message."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {text!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _quoted(values: typing.Iterable[Any]) -> str:
    return ", ".join(repr(v) for v in values)
