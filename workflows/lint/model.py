"""One manifest under validation, and the other manifests of the same run it may refer to.

Argo resolves `templateRef` and `workflowTemplateRef` against the cluster; lint resolves them
among the files it was given (`Catalog`). What is not among them cannot be judged and is
accepted, as before.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from workflows.lint.globals import Globals, workflow_globals
from workflows.lint.walk import top_templates, workflow_spec

TEMPLATE_KINDS = (
    "container", "containerSet", "script", "resource", "dag", "steps", "suspend", "data", "http", "plugin"
)
TEMPLATE_HOLDERS = ("WorkflowTemplate", "ClusterWorkflowTemplate")


def template_kind(template: dict[str, Any]) -> str:
    """GetType: the first kind a template has ("" if none)."""
    return next((kind for kind in TEMPLATE_KINDS if template.get(kind) is not None), "")


@dataclass
class Catalog:
    """WorkflowTemplates and ClusterWorkflowTemplates by name, among all the files given."""

    namespaced: dict[str, Manifest] = field(default_factory=dict)
    cluster: dict[str, Manifest] = field(default_factory=dict)

    def add(self, manifest: Manifest) -> None:
        name = manifest.name
        if manifest.kind in TEMPLATE_HOLDERS and name:
            table = self.cluster if manifest.kind == "ClusterWorkflowTemplate" else self.namespaced
            table.setdefault(name, manifest)

    def get(self, name: Any, cluster_scope: Any) -> Manifest | None:
        if not isinstance(name, str):
            return None
        return (self.cluster if cluster_scope is True else self.namespaced).get(name)


@dataclass(eq=False)
class Manifest:
    """A supported manifest with where its WorkflowSpec is, and the catalog to resolve against."""

    doc: dict[str, Any]
    kind: str
    catalog: Catalog = field(default_factory=Catalog)
    source: str = ""  # file name, for messages about another document

    def __post_init__(self) -> None:
        self.spec, self.spec_path = workflow_spec(self.doc, self.kind)

    @property
    def name(self) -> str:
        metadata = self.doc.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return name if isinstance(name, str) else ""

    @functools.cached_property
    def templates(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for _, template in top_templates(self.spec, self.spec_path):
            if isinstance(template.get("name"), str):
                found.setdefault(template["name"], template)
        return found

    @functools.cached_property
    def referenced(self) -> Manifest | None:
        """The manifest named by spec.workflowTemplateRef, when it is among the files."""
        ref = self.spec.get("workflowTemplateRef")
        if not isinstance(ref, dict):
            return None
        return self.catalog.get(ref.get("name"), ref.get("clusterScope"))

    @functools.cached_property
    def globals(self) -> Globals:
        referenced = self.referenced.spec if self.referenced else None
        return workflow_globals(self.doc, self.kind, self.spec, referenced)

    def own_template(self, name: Any) -> dict[str, Any] | None:
        """A template by name: the manifest's own, or its workflowTemplateRef's."""
        if not isinstance(name, str):
            return None
        if "workflowTemplateRef" in self.spec:
            return self.referenced.templates.get(name) if self.referenced else None
        return self.templates.get(name)

    def resolve(self, holder: dict[str, Any]) -> dict[str, Any] | None:
        """The template a step, task or hook runs; None where it cannot be found here."""
        if isinstance(holder.get("inline"), dict):
            return holder["inline"]
        ref = holder.get("templateRef")
        if isinstance(ref, dict):
            target = self.catalog.get(ref.get("name"), ref.get("clusterScope"))
            wanted = ref.get("template")
            return target.templates.get(wanted) if target and isinstance(wanted, str) else None
        return self.own_template(holder.get("template"))

