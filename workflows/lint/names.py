"""Names Argo accepts: validate.go's `validateWorkflowFieldNames`, `isValidWorkflowFieldName`,
`isValidParamOrArtifactName` and `isValidStepName`, and the object name lengths of `Workflow`,
`WorkflowTemplate`, `ClusterWorkflowTemplate` and `CronWorkflow`.

Templates, DAG tasks and steps: letters, digits and '-', starting with a letter or digit, at
most 128 characters. Parameters and artifacts: letters, digits, '_' and '-'. A step name may
hold `{{...}}` (Argo substitutes it first), so only its literal parts are judged.
"""

from __future__ import annotations

import re
from typing import Any

from workflows.lint.findings import Finding, excerpt, item_path, key_path
from workflows.lint.model import Manifest
from workflows.lint.variables import TAG
from workflows.lint.walk import all_templates, as_list, callers

FIELD_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
PARAM_NAME = re.compile(r"^[-a-zA-Z0-9_]+$")
FIELD_MAX = 128
_OBJECT_MAX = {"CronWorkflow": 52}  # the others: 63; a cron's runs append "-<timestamp>"


def field_name_problem(name: str) -> str | None:
    """isValidWorkflowFieldName."""
    if len(name) > FIELD_MAX:
        return f"must be no more than {FIELD_MAX} characters"
    if not FIELD_NAME.match(name):
        return "must consist of letters, digits or '-', and start with a letter or digit"
    return None


def param_name_problem(name: str) -> str | None:
    """isValidParamOrArtifactName."""
    if not PARAM_NAME.match(name):
        return "must consist of letters, digits, '_' or '-' (e.g. my_param_1, MY-PARAM-1)"
    return None


def check_list_names(items: Any, path: str, params: bool) -> list[Finding]:
    """validateWorkflowFieldNames over one list: each name present, valid and unique."""
    seen: set[str] = set()
    findings: list[Finding] = []
    judge = param_name_problem if params else field_name_problem
    for index, item in enumerate(as_list(items)):
        if not isinstance(item, dict):
            continue
        where = item_path(path, index, item)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            findings.append(Finding(where, "a name is required"))
            continue
        problem = judge(name)
        if problem:
            findings.append(Finding(where, f"name {excerpt(name)!r} {problem}"))
        elif name in seen:
            findings.append(Finding(where, f"name {excerpt(name)!r} is used twice"))
        seen.add(name)
    return findings


def check_names(m: Manifest) -> list[Finding]:
    findings = _object_name(m)
    arguments = m.spec.get("arguments")
    if isinstance(arguments, dict):
        findings += _argument_names(arguments, key_path(m.spec_path, "arguments"))
    for index, template in enumerate(as_list(m.spec.get("templates"))):
        name = template.get("name") if isinstance(template, dict) else None
        if isinstance(name, str) and name and field_name_problem(name):
            path = item_path(key_path(m.spec_path, "templates"), index, template)
            findings.append(Finding(path, f"template name {excerpt(name)!r} {field_name_problem(name)}"))
    for path, template in all_templates(m.spec, m.spec_path):
        findings += _template_names(template, path)
    return findings


def _object_name(m: Manifest) -> list[Finding]:
    limit = _OBJECT_MAX.get(m.kind, 63)
    if len(m.name) > limit:
        return [Finding("metadata.name", f"a {m.kind} name must be at most {limit} characters (it has {len(m.name)})")]
    return []


def _argument_names(arguments: dict[str, Any], path: str) -> list[Finding]:
    return (check_list_names(arguments.get("parameters"), key_path(path, "parameters"), True)
            + check_list_names(arguments.get("artifacts"), key_path(path, "artifacts"), True))


def _template_names(template: dict[str, Any], path: str) -> list[Finding]:
    findings: list[Finding] = []
    for section in ("inputs", "outputs"):
        block = template.get(section)
        if isinstance(block, dict):
            for kind in ("parameters", "artifacts"):
                findings += check_list_names(block.get(kind), key_path(key_path(path, section), kind), True)
            findings += _global_names(block, key_path(path, section)) if section == "outputs" else []
    dag = template.get("dag")
    if isinstance(dag, dict):
        findings += [f for f in check_list_names(dag.get("tasks"), key_path(key_path(path, "dag"), "tasks"), False)
                     if "used twice" not in f.message and "is required" not in f.message]  # templates.py says so
    for caller_path, caller, group in callers(template, path):
        name = caller.get("name")
        if group >= 0 and isinstance(name, str) and name:
            problem = field_name_problem(TAG.sub("x", name))  # isValidStepName
            if problem:
                findings.append(Finding(caller_path, f"step name {excerpt(name)!r} {problem}"))
        arguments = caller.get("arguments")
        if isinstance(arguments, dict):
            findings += _argument_names(arguments, key_path(caller_path, "arguments"))
    container_set = template.get("containerSet")
    if isinstance(container_set, dict):
        containers_path = key_path(key_path(path, "containerSet"), "containers")
        findings += check_list_names(container_set.get("containers"), containers_path, False)
    for index, container in enumerate(as_list(template.get("initContainers"))):
        if isinstance(container, dict) and not container.get("name"):
            findings.append(Finding(f"{key_path(path, 'initContainers')}[{index}]",
                                    "initContainers must all have a name"))
    return findings


def _global_names(outputs: dict[str, Any], path: str) -> list[Finding]:
    findings: list[Finding] = []
    for kind in ("parameters", "artifacts"):
        for index, output in enumerate(as_list(outputs.get(kind))):
            name = output.get("globalName") if isinstance(output, dict) else None
            if isinstance(name, str) and name and not TAG.search(name) and param_name_problem(name):
                where = key_path(item_path(key_path(path, kind), index, output), "globalName")
                findings.append(Finding(where, f"globalName {excerpt(name)!r} {param_name_problem(name)}"))
    return findings
