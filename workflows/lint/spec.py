"""Workflow-wide settings: validate.go's `Workflow` (podGC, hooks, podResources,
`WorkflowTemplateRefFields`) and `validateTemplateHolder` (retryPolicy, templateRef fields)."""

from __future__ import annotations

from typing import Any

from workflows.lint.findings import Finding, excerpt, key_path
from workflows.lint.leaf import pod_resources
from workflows.lint.model import Manifest
from workflows.lint.walk import all_templates, as_list, callers

POD_GC_STRATEGIES = ("", "OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess")
RETRY_POLICIES = ("", "Always", "OnError", "OnFailure", "OnTransientError")
_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def check_spec(m: Manifest) -> list[Finding]:
    spec, path = m.spec, m.spec_path
    findings: list[Finding] = []
    if "workflowTemplateRef" in spec and as_list(spec.get("templates")):
        findings.append(Finding(key_path(path, "templates"),
                                "a workflow with a workflowTemplateRef takes its templates from it: remove these"))
    findings += _pod_gc(spec.get("podGC"), key_path(path, "podGC"))
    findings += hooks(spec.get("hooks"), key_path(path, "hooks"))
    findings += pod_resources(spec.get("podResources"), key_path(path, "podResources"))
    for template_path, template in all_templates(spec, path):
        retry = template.get("retryStrategy")
        policy = retry.get("retryPolicy") if isinstance(retry, dict) else None
        if isinstance(policy, str) and policy not in RETRY_POLICIES:
            message = f"{excerpt(policy)!r} is not a retry policy ({', '.join(RETRY_POLICIES[1:])})"
            findings.append(Finding(key_path(key_path(template_path, "retryStrategy"), "retryPolicy"), message))
        for caller_path, caller, group in callers(template, template_path):
            findings += template_ref(caller, caller_path)
            if group >= 0:  # validateSteps checks a step's hooks (validateDAG does not)
                findings += hooks(caller.get("hooks"), key_path(caller_path, "hooks"))
    return findings


def template_ref(holder: dict[str, Any], path: str) -> list[Finding]:
    """validateTemplateHolder: a templateRef names a resource and a template, and no `template`."""
    ref = holder.get("templateRef")
    if not isinstance(ref, dict):
        return []
    findings: list[Finding] = []
    if holder.get("template"):
        findings.append(Finding(path, "give either template or templateRef, not both"))
    if not ref.get("name"):
        findings.append(Finding(key_path(path, "templateRef"), "templateRef.name (the WorkflowTemplate) is required"))
    if not ref.get("template"):
        findings.append(Finding(key_path(path, "templateRef"), "templateRef.template is required"))
    return findings


def hooks(value: Any, path: str) -> list[Finding]:
    """validateHooks: every hook but `exit` needs an expression."""
    if not isinstance(value, dict):
        return []
    return [Finding(key_path(path, name), "a hook other than `exit` needs an expression")
            for name, hook in value.items()
            if name != "exit" and isinstance(hook, dict) and not hook.get("expression")]


def _pod_gc(pod_gc: Any, path: str) -> list[Finding]:
    if not isinstance(pod_gc, dict):
        return []
    findings: list[Finding] = []
    strategy = pod_gc.get("strategy")
    if isinstance(strategy, str) and strategy not in POD_GC_STRATEGIES:
        findings.append(Finding(key_path(path, "strategy"),
                                f"unknown strategy {excerpt(strategy)!r} ({', '.join(POD_GC_STRATEGIES[1:])})"))
    selector = pod_gc.get("labelSelector")
    expressions = selector.get("matchExpressions") if isinstance(selector, dict) else None
    for index, expression in enumerate(as_list(expressions)):
        if not isinstance(expression, dict):
            continue
        where = f"{key_path(key_path(path, 'labelSelector'), 'matchExpressions')}[{index}]"
        operator, values = expression.get("operator"), as_list(expression.get("values"))
        if operator not in _SELECTOR_OPERATORS:
            message = f"{excerpt(str(operator))!r} is not a selector operator ({', '.join(_SELECTOR_OPERATORS)})"
            findings.append(Finding(where, message))
        elif operator in ("In", "NotIn") and not values:
            findings.append(Finding(where, f"operator {operator} needs values"))
        elif operator in ("Exists", "DoesNotExist") and values:
            findings.append(Finding(where, f"operator {operator} takes no values"))
    return findings
