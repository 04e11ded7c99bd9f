"""Finding one's way around an Argo manifest: its WorkflowSpec, templates, steps and tasks.

Every helper tolerates a malformed manifest (a string where a list belongs, a task without a
name): the schema check reports those, the other checks just skip what they cannot read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workflows.lint.findings import item_path, key_path

STEPS_GROUP_NONE = -1  # the "group" of a DAG task, which has no step groups


def workflow_spec(doc: dict[str, Any], kind: str) -> tuple[dict[str, Any], str]:
    """A manifest's WorkflowSpec and its path; a CronWorkflow nests it under `workflowSpec`."""
    spec, path = doc.get("spec"), "spec"
    if kind == "CronWorkflow":
        spec = spec.get("workflowSpec") if isinstance(spec, dict) else None
        path = "spec.workflowSpec"
    return (spec if isinstance(spec, dict) else {}), path


def top_templates(spec: dict[str, Any], spec_path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The templates listed under `spec.templates`, with their paths."""
    for index, template in enumerate(as_list(spec.get("templates"))):
        if isinstance(template, dict):
            yield item_path(key_path(spec_path, "templates"), index, template), template


def all_templates(spec: dict[str, Any], spec_path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every template with its path: each of `spec.templates`, then the inline ones inside it."""
    for path, template in top_templates(spec, spec_path):
        yield path, template
        yield from _inline_templates(template, path)


def callers(template: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any], int]]:
    """The steps of a template (with their group number) or its DAG tasks, with their paths."""
    steps_path = key_path(path, "steps")
    for group_index, group in enumerate(as_list(template.get("steps"))):
        for index, step in enumerate(as_list(group)):
            if isinstance(step, dict):
                yield item_path(f"{steps_path}[{group_index}]", index, step), step, group_index
    for task_path, task in dag_tasks(template.get("dag"), key_path(path, "dag")):
        yield task_path, task, STEPS_GROUP_NONE


def dag_tasks(dag: Any, dag_path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The tasks of a DAG, with their paths."""
    tasks = dag.get("tasks") if isinstance(dag, dict) else None
    for index, task in enumerate(as_list(tasks)):
        if isinstance(task, dict):
            yield item_path(key_path(dag_path, "tasks"), index, task), task


def names(items: Any) -> set[str]:
    """The `name`s of a list of mappings (parameters, artifacts, templates)."""
    return {i["name"] for i in as_list(items) if isinstance(i, dict) and isinstance(i.get("name"), str)}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _inline_templates(template: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for caller_path, caller, _ in callers(template, path):
        inline = caller.get("inline")
        if isinstance(inline, dict):
            inline_path = key_path(caller_path, "inline")
            yield inline_path, inline
            yield from _inline_templates(inline, inline_path)


def strings(value: Any, path: str, skip: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside `value` with its path, leaving out the top-level key `skip`."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != skip:
                yield from strings(item, key_path(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, item_path(path, index, item))
