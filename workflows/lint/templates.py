"""Template names and kinds: what the entrypoint, `onExit`, hooks, steps and tasks point at.

They must name a template of the manifest. A `templateRef` points into another manifest and is
not followed; a Workflow with a `workflowTemplateRef` takes its templates from the referenced
one, so its names are not checked. Templates, steps and tasks need unique names, and each
template exactly one kind (container, script, dag, ...), as Argo requires.
"""

from __future__ import annotations

import difflib
from typing import Any

from workflows.lint.dag import check_dag
from workflows.lint.findings import Finding, excerpt, key_path
from workflows.lint.model import TEMPLATE_KINDS, Manifest
from workflows.lint.walk import all_templates, as_list, callers



def check_templates(m: Manifest) -> list[Finding]:
    """Findings about template names, template kinds, steps and DAGs in a supported manifest.

    Mirrors validate.go's `validateTemplateType`, `validateTemplateHolder` ("template name '%s'
    undefined"), the entrypoint check of `Workflow` and the loops of `addItemsToScope`."""
    spec, spec_path, kind = m.spec, m.spec_path, m.kind
    findings: list[Finding] = []
    defined = _template_names(spec, spec_path, findings)
    known = None if "workflowTemplateRef" in spec else defined  # None: judged by crossdoc
    findings += _check_entrypoint(spec, spec_path, kind, known)
    if isinstance(spec.get("onExit"), str):
        findings += _check_name(spec["onExit"], key_path(spec_path, "onExit"), known)
    findings += _check_hooks(spec.get("hooks"), key_path(spec_path, "hooks"), known)
    for path, template in all_templates(spec, spec_path):
        findings += _check_kind(template, path)
        seen: set[str] = set()
        for caller_path, caller, _ in callers(template, path):
            findings += _check_caller(caller, caller_path, known, seen)
        if isinstance(template.get("dag"), dict):
            findings += check_dag(template["dag"], key_path(path, "dag"))
    return findings


def _template_names(spec: dict[str, Any], spec_path: str, findings: list[Finding]) -> set[str]:
    defined: set[str] = set()
    for index, template in enumerate(as_list(spec.get("templates"))):
        name = template.get("name") if isinstance(template, dict) else None
        path = f"{key_path(spec_path, 'templates')}[{index}]"
        if not isinstance(name, str) or not name:
            findings.append(Finding(path, "template has no name"))
        elif name in defined:
            findings.append(Finding(path, f"template name {excerpt(name)!r} is used twice"))
        if isinstance(name, str):
            defined.add(name)
    return defined


def _check_entrypoint(
    spec: dict[str, Any], spec_path: str, kind: str, known: set[str] | None
) -> list[Finding]:
    entrypoint, path = spec.get("entrypoint"), key_path(spec_path, "entrypoint")
    if entrypoint is None:
        # A WorkflowTemplate may leave it to the Workflow that uses it.
        if kind in ("Workflow", "CronWorkflow") and known is not None:
            return [Finding(path, "entrypoint is missing: name the template the workflow starts with")]
        return []
    return _check_name(entrypoint, path, known) if isinstance(entrypoint, str) else []


def _check_name(name: str, path: str, known: set[str] | None) -> list[Finding]:
    """A finding if `name` should be one of the manifest's templates and is not."""
    if known is None or name in known or "{{" in name:
        return []
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return [Finding(path, f"template {excerpt(name)!r} is not defined in this manifest{hint}")]


def _check_hooks(hooks: Any, path: str, known: set[str] | None) -> list[Finding]:
    findings: list[Finding] = []
    for hook_name, hook in hooks.items() if isinstance(hooks, dict) else []:
        if isinstance(hook, dict) and isinstance(hook.get("template"), str) and "templateRef" not in hook:
            findings += _check_name(hook["template"], key_path(key_path(path, hook_name), "template"), known)
    return findings


def _check_kind(template: dict[str, Any], path: str) -> list[Finding]:
    kinds = [kind for kind in TEMPLATE_KINDS if template.get(kind) is not None]
    if not kinds:
        return [Finding(path, f"template has no type: give it one of {', '.join(TEMPLATE_KINDS)}")]
    if len(kinds) > 1:
        return [Finding(path, f"template has several types ({', '.join(kinds)}): keep one")]
    return []


def _check_caller(caller: dict[str, Any], path: str, known: set[str] | None, seen: set[str]) -> list[Finding]:
    """A step or a DAG task: a name unique in its template, and a template that exists."""
    findings: list[Finding] = []
    name = caller.get("name")
    if not isinstance(name, str) or not name:
        findings.append(Finding(path, "needs a name"))
    elif name in seen:
        findings.append(Finding(path, f"name {excerpt(name)!r} is used twice in this template"))
    if isinstance(name, str):
        seen.add(name)
    if "templateRef" not in caller and "inline" not in caller:
        if isinstance(caller.get("template"), str):
            findings += _check_name(caller["template"], key_path(path, "template"), known)
        else:
            findings.append(Finding(path, "needs a template, a templateRef or an inline template"))
    looping = [key for key in ("withItems", "withParam", "withSequence") if caller.get(key) not in (None, "", [])]
    if len(looping) > 1:
        findings.append(Finding(path,
                                f"use only one of withItems, withParam, withSequence (it has {', '.join(looping)})"))
    sequence = caller.get("withSequence")
    if isinstance(sequence, dict) and sequence.get("count") is not None and sequence.get("end") is not None:
        findings.append(Finding(key_path(path, "withSequence"), "give either count or end, not both"))
    if isinstance(caller.get("onExit"), str):
        findings += _check_name(caller["onExit"], key_path(path, "onExit"), known)
    return findings + _check_hooks(caller.get("hooks"), key_path(path, "hooks"), known)
