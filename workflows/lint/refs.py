"""`{{...}}` references that must point at something the manifest declares.

As Argo's own validation does: `{{tasks.X...}}` and `{{steps.X...}}` name a task or step of the
template they appear in (a step of an earlier group, for steps), and, when X's template is in
this manifest, an output parameter or artifact it declares; `{{inputs.parameters.X}}` and
`{{inputs.artifacts.X}}` name an input of the enclosing template; `{{workflow.parameters.X}}`
names a `spec.arguments` parameter; a task argument taken from another task's outputs needs
that task among its dependencies. Expression tags (`{{=...}}`) are skipped, as Argo skips them.
Workflow parameters are not judged in WorkflowTemplates, in Workflows with a
`workflowTemplateRef`, or where no arguments are declared: they may be supplied from elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from workflows.lint.depends import task_dependencies
from workflows.lint.findings import Finding, item_path, key_path
from workflows.lint.walk import (
    STEPS_GROUP_NONE,
    all_templates,
    as_list,
    callers,
    names,
    top_templates,
    workflow_spec,
)

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)  # as Argo's fasttemplate splits them


@dataclass(frozen=True)
class _Scope:
    """What the strings of one template may refer to."""

    template: str  # its name, for messages
    inputs: dict[str, set[str]]  # "parameters" / "artifacts" -> declared names
    kind: str = ""  # "tasks" in a DAG, "steps" in a steps template, "" elsewhere
    callers: dict[str, dict[str, Any]] = field(default_factory=dict)  # step or task name -> it
    group_of: dict[str, int] = field(default_factory=dict)  # step name -> its step group
    group: int | None = None  # the step group a string sits in; None outside the steps


@dataclass(frozen=True)
class _Manifest:
    """What every reference in a manifest is judged against."""

    templates: dict[str, dict[str, Any]]  # name -> template
    parameters: set[str] | None  # declared workflow parameters; None: not judged


def check_references(doc: dict[str, Any], kind: str) -> list[Finding]:
    """Findings for `{{...}}` references to things the manifest does not declare."""
    spec, spec_path = workflow_spec(doc, kind)
    templates = {t["name"]: t for _, t in all_templates(spec, spec_path) if isinstance(t.get("name"), str)}
    manifest = _Manifest(templates, _workflow_parameters(spec, kind))
    findings: list[Finding] = []
    for path, template in top_templates(spec, spec_path):
        findings += _check_template(template, path, _Scope("", {}), manifest)
    return findings


def _workflow_parameters(spec: dict[str, Any], kind: str) -> set[str] | None:
    if kind not in ("Workflow", "CronWorkflow") or "workflowTemplateRef" in spec:
        return None
    arguments = spec.get("arguments")
    declared = as_list(arguments.get("parameters")) if isinstance(arguments, dict) else []
    return names(declared) if declared else None


def _check_template(template: dict[str, Any], path: str, outer: _Scope, manifest: _Manifest) -> list[Finding]:
    """Findings for one template; an inline template also sees its caller's inputs and siblings."""
    scope = _template_scope(template, outer)
    findings: list[Finding] = []
    for caller_path, caller, group in callers(template, path):
        caller_scope = replace(scope, group=group if group != STEPS_GROUP_NONE else None)
        for string_path, text in _strings(caller, caller_path, skip="inline"):
            findings += _check_string(text, string_path, caller_scope, manifest)
        if isinstance(caller.get("inline"), dict):
            findings += _check_template(
                caller["inline"], key_path(caller_path, "inline"), caller_scope, manifest
            )
        if scope.kind == "tasks":
            findings += _check_argument_dependencies(caller, caller_path, scope.callers)
    for string_path, text in _strings(_without_callers(template), path):
        findings += _check_string(text, string_path, scope, manifest)
    return findings


def _template_scope(template: dict[str, Any], outer: _Scope) -> _Scope:
    inputs = template.get("inputs") if isinstance(template.get("inputs"), dict) else {}
    declared = {
        kind: names(inputs.get(kind)) | outer.inputs.get(kind, set()) for kind in ("parameters", "artifacts")
    }
    name = template.get("name") if isinstance(template.get("name"), str) else outer.template
    found = [
        (caller, group) for _, caller, group in callers(template, "") if isinstance(caller.get("name"), str)
    ]
    if not found:  # a leaf template keeps the DAG or steps context it is inlined in
        return replace(outer, template=name, inputs=declared)
    kind = "tasks" if isinstance(template.get("dag"), dict) else "steps"
    named = {caller["name"]: caller for caller, _ in found}
    group_of = {caller["name"]: group for caller, group in found} if kind == "steps" else {}
    return _Scope(name, declared, kind, named, group_of)


def _without_callers(template: dict[str, Any]) -> dict[str, Any]:
    """The template minus its steps and DAG tasks, whose strings are checked step by step."""
    rest = {key: value for key, value in template.items() if key not in ("steps", "dag")}
    if isinstance(template.get("dag"), dict):  # the DAG's own fields, e.g. `target`
        rest["dag"] = {key: value for key, value in template["dag"].items() if key != "tasks"}
    return rest


def _check_string(text: str, path: str, scope: _Scope, manifest: _Manifest) -> Iterator[Finding]:
    for match in _TAG.finditer(text):
        tag = match.group(1).strip()
        if tag.startswith("="):
            continue  # an expression: Argo does not check these before running either
        message = _problem(tag.split("."), scope, manifest)
        if message:
            yield Finding(path, f"{{{{{tag}}}}}: {message}")


def _problem(parts: list[str], scope: _Scope, manifest: _Manifest) -> str | None:
    """What is wrong with the reference `.`.join(parts), if anything this check knows of."""
    if parts[0] == "inputs" and len(parts) >= 3 and parts[1] in ("parameters", "artifacts"):
        if parts[2] not in scope.inputs[parts[1]]:
            return f"template {scope.template!r} has no input {parts[1][:-1]} {parts[2]!r}"
    elif parts[:2] == ["workflow", "parameters"] and len(parts) == 3 and manifest.parameters is not None:
        if parts[2] not in manifest.parameters and parts[2] != "json":
            return f"{parts[2]!r} is not declared in spec.arguments.parameters"
    elif parts[0] in ("tasks", "steps") and len(parts) >= 2 and parts[1:] != ["name"]:
        return _caller_problem(parts, scope, manifest)
    return None


def _caller_problem(parts: list[str], scope: _Scope, manifest: _Manifest) -> str | None:
    kind, name = parts[0], parts[1]
    if scope.kind != kind:
        return f"`{kind}.` references work only inside a {'DAG' if kind == 'tasks' else 'steps'} template"
    caller = scope.callers.get(name)
    if caller is None:
        return f"there is no {kind[:-1]} {name!r} in template {scope.template!r}"
    if scope.group is not None and scope.group_of.get(name, 0) > scope.group:
        return (
            f"step {name!r} runs later (step group {scope.group_of[name]}), so its outputs do not exist yet"
        )
    if len(parts) >= 5 and parts[2] == "outputs" and parts[3] in ("parameters", "artifacts"):
        declared = _declared_outputs(caller, manifest, parts[3])
        if declared is not None and parts[4] not in declared:
            return f"the template of {name!r} declares no output {parts[3][:-1]} {parts[4]!r}"
    return None


def _declared_outputs(caller: dict[str, Any], manifest: _Manifest, kind: str) -> set[str] | None:
    """Output names of the template a step or task runs; None if that template is elsewhere."""
    template = caller.get("inline")
    if not isinstance(template, dict):
        if "templateRef" in caller or not isinstance(caller.get("template"), str):
            return None
        template = manifest.templates.get(caller["template"])
        if template is None:
            return None  # an unknown template is reported by lint_templates
    outputs = template.get("outputs")
    return names(outputs.get(kind) if isinstance(outputs, dict) else None)


def _check_argument_dependencies(
    task: dict[str, Any], path: str, tasks: dict[str, dict[str, Any]]
) -> list[Finding]:
    """A task argument taken from another task's outputs needs that task among its ancestors."""
    arguments = task.get("arguments") if isinstance(task.get("arguments"), dict) else {}
    ancestors = _ancestors(task, tasks)
    findings: list[Finding] = []
    for kind, key in (("parameters", "value"), ("artifacts", "from")):
        list_path = key_path(key_path(path, "arguments"), kind)
        for index, argument in enumerate(as_list(arguments.get(kind))):
            value = argument.get(key) if isinstance(argument, dict) else None
            if not isinstance(value, str) or not value.startswith("{{tasks."):
                continue
            source = value.removeprefix("{{tasks.").split(".")[0].rstrip("}")
            if source in tasks and source not in ancestors:
                message = (
                    f"uses task {source!r} but does not depend on it: add it to `depends` or `dependencies`"
                )
                findings.append(Finding(key_path(item_path(list_path, index, argument), key), message))
    return findings


def _ancestors(task: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> set[str]:
    seen: set[str] = set()
    pending = [name for name, _ in task_dependencies(task)]
    while pending:
        name = pending.pop()
        if name in tasks and name not in seen:
            seen.add(name)
            pending += [dependency for dependency, _ in task_dependencies(tasks[name])]
    return seen


def _strings(value: Any, path: str, skip: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside `value` with its path, leaving out the top-level key `skip`."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != skip:
                yield from _strings(item, key_path(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, item_path(path, index, item))
