"""Checks across documents: what a Workflow or CronWorkflow asks of the WorkflowTemplates it
uses, when those are among the files given.

validate.go's `Workflow` merges the referenced template's arguments into the workflow's, resolves
the entrypoint, the exit handler and every `templateRef` (`validateTemplateHolder`: "template
reference X.Y not found"), and validates the referenced templates with the workflow's own
globals, so a `{{workflow.parameters.x}}` there must be one the workflow provides. Beyond Argo,
a parameter passed to a WorkflowTemplate that neither declares nor reads it is an error too:
Argo ignores it, and a misspelt name silently runs with the template's default.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from workflows.lint.findings import Finding, excerpt, item_path, key_path
from workflows.lint.model import Manifest
from workflows.lint.variables import check_template
from workflows.lint.walk import all_templates, as_list, callers, names, top_templates


def check_cross_document(m: Manifest) -> list[Finding]:
    findings = _template_refs(m)
    if m.kind in ("Workflow", "CronWorkflow"):
        findings += _workflow_template_ref(m)
        findings += _external_variables(m)
    return findings


def _template_refs(m: Manifest) -> list[Finding]:
    findings: list[Finding] = []
    for path, template in all_templates(m.spec, m.spec_path):
        for caller_path, caller, _ in callers(template, path):
            ref = caller.get("templateRef")
            if not isinstance(ref, dict) or "{{" in str(ref):
                continue
            target = m.catalog.get(ref.get("name"), ref.get("clusterScope"))
            wanted = ref.get("template")
            if target is not None and isinstance(wanted, str) and wanted not in target.templates:
                close = difflib.get_close_matches(wanted, sorted(target.templates), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                findings.append(Finding(key_path(key_path(caller_path, "templateRef"), "template"),
                                        f"{_named(target)} has no template {excerpt(wanted)!r}{hint}"))
    return findings


def _workflow_template_ref(m: Manifest) -> list[Finding]:
    target = m.referenced
    if target is None:
        return []
    findings: list[Finding] = []
    target_arguments = target.spec.get("arguments") if isinstance(target.spec.get("arguments"), dict) else {}
    declared = names(target_arguments.get("parameters"))
    entry = target.own_template(m.spec.get("entrypoint") or target.spec.get("entrypoint"))
    if isinstance(entry, dict) and isinstance(entry.get("inputs"), dict):  # spec.arguments feed the entrypoint's inputs
        declared |= names(entry["inputs"].get("parameters"))
    used = json.dumps(target.spec, default=str)  # a parameter read as {{workflow.parameters.x}} is used
    if re.search(r"workflow\.parameters(\.json)?\s*(}}|\))", used):
        return findings + _entrypoints(m, target)  # the whole list is read: any parameter may matter
    arguments = m.spec.get("arguments") if isinstance(m.spec.get("arguments"), dict) else {}
    list_path = key_path(key_path(m.spec_path, "arguments"), "parameters")
    for index, param in enumerate(as_list(arguments.get("parameters"))):
        name = param.get("name") if isinstance(param, dict) else None
        if isinstance(name, str) and name not in declared and not _reads(used, name):
            close = difflib.get_close_matches(name, sorted(declared), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            findings.append(Finding(item_path(list_path, index, param),
                                    f"{_named(target)} declares no parameter {excerpt(name)!r}{hint}"))
    return findings + _entrypoints(m, target)


def _reads(text: str, name: str) -> bool:
    """Whether serialized templates read workflow parameter `name` (as a tag or in an expression)."""
    quoted = re.escape(name)
    return bool(re.search(rf"workflow\.parameters(\.{quoted}(?![-\w])|\[\\?[\"']{quoted}\\?[\"']\])", text))


def _entrypoints(m: Manifest, target: Manifest) -> list[Finding]:
    findings: list[Finding] = []
    for key in ("entrypoint", "onExit"):
        name = m.spec.get(key) or (None if key == "onExit" else target.spec.get(key))
        if isinstance(name, str) and "{{" not in name and name not in target.templates:
            findings.append(Finding(key_path(m.spec_path, key),
                                    f"{target.kind} {target.name!r} has no template {excerpt(name)!r}"))
    if not (m.spec.get("entrypoint") or target.spec.get("entrypoint")):
        findings.append(Finding(key_path(m.spec_path, "entrypoint"),
                                f"neither this workflow nor {target.kind} {target.name!r} names an entrypoint"))
    return findings


def _named(m: Manifest) -> str:
    return f"{m.kind} {m.name!r} ({m.source})"


def _external_variables(m: Manifest) -> list[Finding]:
    """The workflow.parameters used by the templates this workflow runs from other documents."""
    findings: list[Finding] = []
    for target, path, template in _external_templates(m):
        for finding in check_template(target, template, path, m.globals):
            if "workflow parameter" in finding.message:
                what, _, hint = finding.message.partition(" is not declared in spec.arguments.parameters")
                message = f"{what} is not provided by {_named(m)}, which runs this template{hint}"
                findings.append(Finding(finding.path, message, target))
    return findings


def _external_templates(m: Manifest) -> list[tuple[Manifest, str, dict[str, Any]]]:
    found: list[tuple[Manifest, str, dict[str, Any]]] = []
    seen: set[tuple[int, str]] = set()
    pending: list[tuple[Manifest, str]] = []
    if m.referenced is not None:
        pending += [(m.referenced, name) for name in m.referenced.templates]
    pending += _refs_from(m, m.spec, m.spec_path)
    while pending:
        target, name = pending.pop()
        if (id(target), name) in seen or name not in target.templates:
            continue
        seen.add((id(target), name))
        for path, template in top_templates(target.spec, target.spec_path):
            if template.get("name") == name:
                found.append((target, path, template))
                pending += _refs_from(m, {"templates": [template]}, "")
                pending += [(target, str(c.get("template")))
                            for _, c, _ in callers(template, path) if "templateRef" not in c]
                break
    return found


def _refs_from(m: Manifest, spec: dict[str, Any], spec_path: str) -> list[tuple[Manifest, str]]:
    refs: list[tuple[Manifest, str]] = []
    for path, template in all_templates(spec, spec_path):
        for _, caller, _ in callers(template, path):
            ref = caller.get("templateRef")
            if isinstance(ref, dict):
                target = m.catalog.get(ref.get("name"), ref.get("clusterScope"))
                if target is not None and isinstance(ref.get("template"), str):
                    refs.append((target, ref["template"]))
    return refs
