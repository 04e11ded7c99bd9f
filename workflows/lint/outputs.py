"""Output parameters and artifacts: validate.go's `validateOutputs` and `validateOutputParameter`.

An output parameter has exactly one of `value` or `valueFrom`, and its valueFrom exactly one
source (path, jqFilter, jsonPath, parameter, expression or supplied), of a kind its template can
produce: `path` for container, containerSet and script templates, `jqFilter` or `jsonPath` for
resource templates, `parameter` or `expression` for steps and DAGs. An output artifact's `path`
is for leaf templates only, required there, and may not climb out with `..`.
"""

from __future__ import annotations

import posixpath
from typing import Any

from workflows.lint.findings import Finding, item_path, key_path
from workflows.lint.model import template_kind
from workflows.lint.variables import LEAF_KINDS
from workflows.lint.walk import all_templates, as_list

_SOURCES = ("path", "jqFilter", "jsonPath", "parameter", "expression")
_KIND_SOURCES = {
    "container": ("path",), "containerSet": ("path",), "script": ("path",),
    "resource": ("jqFilter", "jsonPath"),
    "steps": ("parameter", "expression"), "dag": ("parameter", "expression"),
}


def check_outputs(m: Any) -> list[Finding]:
    findings: list[Finding] = []
    for path, template in all_templates(m.spec, m.spec_path):
        outputs = template.get("outputs")
        if not isinstance(outputs, dict):
            continue
        kind = template_kind(template)
        outputs_path = key_path(path, "outputs")
        for index, param in enumerate(as_list(outputs.get("parameters"))):
            if isinstance(param, dict):
                where = item_path(key_path(outputs_path, "parameters"), index, param)
                findings += _output_parameter(param, where, kind)
        for index, artifact in enumerate(as_list(outputs.get("artifacts"))):
            if isinstance(artifact, dict):
                where = item_path(key_path(outputs_path, "artifacts"), index, artifact)
                findings += artifact_path(artifact, where, kind in LEAF_KINDS)
    return findings


def _output_parameter(param: dict[str, Any], path: str, kind: str) -> list[Finding]:
    value_from = param.get("valueFrom")
    if value_from is not None and param.get("value") is not None:
        return [Finding(path, "has both value and valueFrom: choose one")]
    if param.get("value") is not None:
        return []
    if not isinstance(value_from, dict):
        return [Finding(path, "needs valueFrom (or value)")]
    given = [s for s in _SOURCES if value_from.get(s)]
    given += ["supplied"] if value_from.get("supplied") is not None else []
    if not given:
        return [Finding(key_path(path, "valueFrom"),
                        f"says where the value comes from with none of {', '.join(_SOURCES)}, supplied")]
    if len(given) > 1:
        return [Finding(key_path(path, "valueFrom"), f"has several sources ({', '.join(given)}): keep one")]
    allowed = _KIND_SOURCES.get(kind)
    if allowed is None or given[0] in allowed:
        if kind in ("steps", "dag") and value_from.get("parameter") and value_from.get("expression"):
            return [Finding(key_path(path, "valueFrom"), "has both parameter and expression: keep one")]
        return []
    return [Finding(key_path(path, "valueFrom"),
                    f"a {kind} template takes its output from {' or '.join(allowed)}, not {given[0]}")]


def artifact_path(artifact: dict[str, Any], path: str, leaf: bool) -> list[Finding]:
    """Artifact.CleanPath for a leaf template; no path at all elsewhere."""
    value = artifact.get("path")
    if not leaf:
        if value:
            return [Finding(key_path(path, "path"),
                            "an artifact path is only valid in container, script and other leaf templates")]
        return []
    if not isinstance(value, str) or not value:
        return [Finding(path, "a leaf template's artifact needs a path")]
    safe = ""
    if "/../" in value:
        safe = value.split("/../", 1)[0]
    elif value.endswith("/.."):
        safe = value[:-3]
    cleaned = posixpath.normpath(value)
    if safe and (not cleaned.startswith(safe + "/") or len(cleaned) <= len(safe) + 1):
        return [Finding(key_path(path, "path"), "the path climbs out of its folder with '..'")]
    return []
