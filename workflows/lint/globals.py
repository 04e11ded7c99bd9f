"""The `{{workflow.*}}` variables a manifest defines, as validate.go's `Workflow` and
`newTemplateValidationCtx` put them in `globalParams`, and what `resolveAllVariables` accepts
beyond them (creationTimestamp, scheduledTime and duration at run time).

validate.go accepts any `workflow.parameters.*` in a WorkflowTemplate validated alone, since the
Workflow that runs it may pass them. A WorkflowTemplate that declares spec.arguments.parameters
states its parameters, and a Workflow passing one it does not declare is refused (crossdoc.py):
there its own declarations judge `{{workflow.parameters.x}}`. One that declares none (a library
of templates reading their caller's parameters) is judged as validate.go judges it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from workflows.lint.walk import as_list, names

_FIXED = ("name", "namespace", "mainEntrypoint", "serviceAccountName", "uid", "status",
          "annotations", "annotations.json", "labels", "labels.json")
_RUNTIME_PREFIXES = ("workflow.creationTimestamp", "workflow.scheduledTime", "workflow.duration")
PARAMETER_TAG = re.compile(r"{{[-a-zA-Z0-9]+(\.[-a-zA-Z0-9_]+)*}}")  # validate.go's paramRegex
CRON_LABEL = "workflows.argoproj.io/cron-workflow"
CRON_ANNOTATION = "workflows.argoproj.io/scheduled-time"


@dataclass
class Globals:
    """The workflow variables one validation may use."""

    tags: set[str] = field(default_factory=set)
    parameters: set[str] = field(default_factory=set)
    any_parameter: bool = False  # a WorkflowTemplate that declares none: the caller may supply them
    any_output_parameter: bool = False
    any_output_artifact: bool = False

    def problem(self, tag: str) -> str | None:
        if tag in self.tags or tag.startswith(_RUNTIME_PREFIXES):
            return None
        if tag.startswith("workflow.parameters") and self.any_parameter:
            return None
        if tag.startswith("workflow.outputs.parameters.") and self.any_output_parameter:
            return None
        if tag.startswith("workflow.outputs.artifacts.") and self.any_output_artifact:
            return None
        if tag.startswith("workflow.parameters."):
            name = tag.removeprefix("workflow.parameters.")
            close = difflib.get_close_matches(name, sorted(self.parameters), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"workflow parameter {name!r} is not declared in spec.arguments.parameters{hint}"
        if tag == "workflow.failures":
            return "`workflow.failures` exists only in a workflow with an exit handler (onExit)"
        if tag == "workflow.priority":
            return "`workflow.priority` exists only when spec.priority is set"
        for kind in ("labels", "annotations"):
            if tag.startswith(f"workflow.{kind}."):
                return f"no {kind[:-1]} {tag.split('.', 2)[2]!r} is set on the workflow"
        close = difflib.get_close_matches(tag, sorted(self.tags), n=1)
        return "unknown workflow variable" + (f"; did you mean {{{{{close[0]}}}}}?" if close else "")


def workflow_globals(doc: dict[str, Any], kind: str, spec: dict[str, Any],
                     referenced: dict[str, Any] | None = None) -> Globals:
    """The globals of a manifest; `referenced` is the spec of its workflowTemplateRef, if found."""
    g = Globals(tags={f"workflow.{name}" for name in _FIXED})
    parameters = _arguments(spec) + (_arguments(referenced) if referenced else [])
    g.any_parameter = kind in ("WorkflowTemplate", "ClusterWorkflowTemplate") and not parameters
    g.parameters = names(parameters)
    if parameters:
        g.tags |= {"workflow.parameters", "workflow.parameters.json"}
    g.tags |= {f"workflow.parameters.{name}" for name in g.parameters}
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    labels, annotations = _keys(metadata.get("labels")), _keys(metadata.get("annotations"))
    if kind == "CronWorkflow":
        labels = {CRON_LABEL} | ({"workflows.argoproj.io/controller-instanceid"} & labels)
        annotations = {CRON_ANNOTATION}
        cron_meta = _mapping(_mapping(doc.get("spec")).get("workflowMetadata"))
        labels |= _keys(cron_meta.get("labels"))
        annotations |= _keys(cron_meta.get("annotations"))
    for source in (spec, referenced or {}):
        meta = _mapping(source.get("workflowMetadata"))
        labels |= _keys(meta.get("labels")) | _keys(meta.get("labelsFrom"))
        annotations |= _keys(meta.get("annotations"))
    g.tags |= {f"workflow.labels.{k}" for k in labels} | {f"workflow.annotations.{k}" for k in annotations}
    if spec.get("priority") is not None:
        g.tags.add("workflow.priority")
    if spec.get("onExit") or (referenced or {}).get("onExit"):
        g.tags.add("workflow.failures")
    for source in (spec, referenced or {}):
        _add_global_outputs(g, source)
    return g


def _add_global_outputs(g: Globals, spec: dict[str, Any]) -> None:
    """addOutputsToScope: outputs with a globalName become workflow.outputs.*."""
    from workflows.lint.walk import all_templates  # the walk knows inline templates too

    for _, template in all_templates(spec, ""):
        outputs = _mapping(template.get("outputs"))
        for kind, flag in (("parameters", "any_output_parameter"), ("artifacts", "any_output_artifact")):
            for output in as_list(outputs.get(kind)):
                global_name = output.get("globalName") if isinstance(output, dict) else None
                if not isinstance(global_name, str) or not global_name:
                    continue
                if PARAMETER_TAG.search(global_name):
                    setattr(g, flag, True)
                else:
                    g.tags.add(f"workflow.outputs.{kind}.{global_name}")


def _arguments(spec: dict[str, Any] | None) -> list[Any]:
    arguments = _mapping((spec or {}).get("arguments"))
    return as_list(arguments.get("parameters"))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _keys(value: Any) -> set[str]:
    return {str(k) for k in value} if isinstance(value, dict) else set()
