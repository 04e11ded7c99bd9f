"""Arguments: values present, `enum` respected, and every input a template needs supplied.

- validate.go's `validateArgumentsValues`: a parameter needs `value` or `valueFrom` (not for
  spec.arguments of a Workflow under `argo lint` or of a WorkflowTemplate, which are supplied at
  submission; a CronWorkflow submits itself, so it needs them); `valueFrom` of an argument takes
  only configMapKeyRef, event or supplied (with default); an `enum` is not empty and holds the
  value; an artifact needs `from`, a location or a key, and not both `from` and
  `fromExpression`.
- common.ProcessArgs (called by validate.go's `validateTemplate` with the caller's arguments):
  an input parameter without value, default or valueFrom, or an input artifact that is not
  optional and has no location, must be passed by every step, task, entrypoint and exit
  handler that runs the template.
"""

from __future__ import annotations

from typing import Any

from workflows.lint.findings import Finding, excerpt, item_path, key_path
from workflows.lint.model import Manifest
from workflows.lint.walk import all_templates, as_list, callers, names

ARTIFACT_LOCATIONS = ("s3", "gcs", "git", "http", "artifactory", "hdfs", "raw", "oss", "azure", "plugin", "key")
_ARGUMENT_VALUE_FROM = ("configMapKeyRef", "event", "supplied")
_OUTPUT_VALUE_FROM = ("path", "jsonPath", "parameter", "expression")  # what validateArgumentsValues refuses


def check_arguments(m: Manifest) -> list[Finding]:
    findings: list[Finding] = []
    arguments = m.spec.get("arguments")
    if isinstance(arguments, dict):
        allow_empty = m.kind != "CronWorkflow"
        findings += argument_values(arguments, key_path(m.spec_path, "arguments"), allow_empty)
    for path, template in all_templates(m.spec, m.spec_path):
        for caller_path, caller, _ in callers(template, path):
            arguments = caller.get("arguments") if isinstance(caller.get("arguments"), dict) else {}
            findings += argument_values(arguments, key_path(caller_path, "arguments"), False)
            callee = m.resolve(caller)
            if callee is not None:
                findings += not_supplied(callee, arguments, caller_path, "this step or task")
    findings += _entry_points(m)
    return findings


def _entry_points(m: Manifest) -> list[Finding]:
    """The entrypoint runs with spec.arguments (FakeArguments for a WorkflowTemplate on its own);
    the exit handler with spec.arguments in every kind (validate.go `Workflow`)."""
    arguments = m.spec.get("arguments") if isinstance(m.spec.get("arguments"), dict) else {}
    merged = dict(arguments)
    if m.referenced is not None:
        ref_args = m.referenced.spec.get("arguments") if isinstance(m.referenced.spec.get("arguments"), dict) else {}
        for kind in ("parameters", "artifacts"):
            merged[kind] = as_list(arguments.get(kind)) + as_list(ref_args.get(kind))
    findings: list[Finding] = []
    entrypoint = m.spec.get("entrypoint") or (m.referenced.spec.get("entrypoint") if m.referenced else None)
    if m.kind in ("Workflow", "CronWorkflow"):
        template = m.own_template(entrypoint)
        if template is not None:
            findings += not_supplied(template, merged, key_path(m.spec_path, "arguments"), "spec.arguments")
    template = m.own_template(m.spec.get("onExit"))
    if template is not None:
        findings += not_supplied(template, arguments, key_path(m.spec_path, "onExit"), "spec.arguments")
    return findings


def argument_values(arguments: dict[str, Any], path: str, allow_empty: bool) -> list[Finding]:
    """validateArgumentsValues."""
    findings: list[Finding] = []
    list_path = key_path(path, "parameters")
    for index, param in enumerate(as_list(arguments.get("parameters"))):
        if not isinstance(param, dict):
            continue
        where = item_path(list_path, index, param)
        value_from = param.get("valueFrom")
        if param.get("value") is None and value_from is None and not allow_empty:
            findings.append(Finding(where, "needs a value or valueFrom"))
        if isinstance(value_from, dict):
            if not any(value_from.get(k) is not None and value_from.get(k) != "" for k in _ARGUMENT_VALUE_FROM) or any(
                value_from.get(k) for k in _OUTPUT_VALUE_FROM
            ):
                findings.append(Finding(key_path(where, "valueFrom"),
                                        "an argument's valueFrom takes only configMapKeyRef, event or supplied "
                                        "(with default)"))
        enum = param.get("enum")
        if isinstance(enum, list):
            if not enum:
                findings.append(Finding(key_path(where, "enum"), "enum must list at least one value"))
            elif param.get("value") is None:
                if not allow_empty:
                    findings.append(Finding(where, "needs a value (it has an enum)"))
            elif _text(param["value"]) not in {_text(v) for v in enum}:
                shown = ", ".join(excerpt(_text(v), 20) for v in enum[:10])
                findings.append(Finding(key_path(where, "value"),
                                        f"{excerpt(_text(param['value']))!r} is not in its enum ({shown})"))
    artifacts_path = key_path(path, "artifacts")
    for index, artifact in enumerate(as_list(arguments.get("artifacts"))):
        if not isinstance(artifact, dict):
            continue
        where = item_path(artifacts_path, index, artifact)
        if not artifact.get("from") and not has_location(artifact) and not artifact.get("fromExpression"):
            findings.append(Finding(where, "needs `from`, an artifact location or a key"))
        if artifact.get("from") and artifact.get("fromExpression"):
            findings.append(Finding(where, "use either `from` or `fromExpression`, not both"))
    return findings


def has_location(artifact: dict[str, Any]) -> bool:
    """HasLocationOrKey."""
    return any(artifact.get(key) not in (None, "") for key in ARTIFACT_LOCATIONS)


def not_supplied(template: dict[str, Any], arguments: Any, path: str, by: str) -> list[Finding]:
    """ProcessArgs: the inputs of `template` that have no value and that `arguments` do not pass."""
    arguments = arguments if isinstance(arguments, dict) else {}
    inputs = template.get("inputs") if isinstance(template.get("inputs"), dict) else {}
    given = names(arguments.get("parameters"))
    missing = [
        p["name"] for p in as_list(inputs.get("parameters"))
        if isinstance(p, dict) and isinstance(p.get("name"), str)
        and p.get("value") is None and p.get("default") is None and p.get("valueFrom") is None
        and p["name"] not in given
    ]
    given_artifacts = names(arguments.get("artifacts"))
    missing += [
        f"artifact {a['name']}" for a in as_list(inputs.get("artifacts"))
        if isinstance(a, dict) and isinstance(a.get("name"), str) and a.get("optional") is not True
        and not has_location(a) and a["name"] not in given_artifacts
    ]
    if not missing:
        return []
    name = template.get("name") or "inline"
    return [Finding(path, f"template {excerpt(name)!r} needs input {', '.join(missing)}, which {by} does not supply")]


def _text(value: Any) -> str:
    """A parameter value as Argo's AnyString holds it."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
