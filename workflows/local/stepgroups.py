"""A `steps` template as Argo's controller runs it (controller/steps.go executeSteps,
executeStepGroup): groups one after the other, the steps of a group at once. A step sees the
outputs of the steps of earlier groups (`{{steps.NAME.outputs...}}`); a group whose step Failed or
Errored (without a `continueOn` for that phase) fails the template, and no later group runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from workflows.local.dag import continues_on
from workflows.local.nodes import Node

if TYPE_CHECKING:
    from workflows.local.runner import Level, LocalRunner, TaskResult


def run(runner: LocalRunner, template: dict, level: Level
        ) -> tuple[str, str, dict[str, str | None], dict[str, TaskResult]]:
    """(phase, message, the scope its outputs are taken from, each step's result by name)."""
    level = replace(level, prefix="steps")
    results: dict[str, TaskResult] = {}
    limit = runner.pods_at_once(template)
    for index, group in enumerate(template.get("steps") or []):
        group_node = Node(f"{level.node.name}[{index}]", f"[{index}]", "", started_at=datetime.now(timezone.utc))
        level.node.children.append(group_node)
        values = runner._values(results, level, prefix="steps")
        planned = []
        for step in group or []:
            node = Node(f"{group_node.name}.{step['name']}", step["name"], step["template"],
                        started_at=datetime.now(timezone.utc))
            group_node.children.append(node)
            runner.echo(f"[{level.folder}{step['name']}]")
            task = {**step, "folder": f"{level.folder}{step['name']}"}
            planned.append((step, node, runner._fan_out(task, node, results, values, level)))
        finished = _run_group(runner, planned, limit, level)
        failed = next((step["name"] for step, done in finished
                       if done.status in ("Failed", "Error") and not continues_on(step, done.status)), None)
        for step, done in finished:
            results[step["name"]] = done
            runner._finished(step["name"], done, {}, index + 1, len(template["steps"]), level)
        if runner._stopping:
            group_node.finish("Failed", "Stopped with strategy 'Stop'")
            return "Failed", group_node.message, runner._values(results, level, "steps"), results
        if failed is not None:
            # steps.go executeStepGroup: "child '<node>' failed"; executeSteps: the template takes it.
            message = f"child '{group_node.name}.{failed}' failed"
            group_node.finish("Failed", message)
            return "Failed", message, runner._values(results, level, "steps"), results
        group_node.finish("Succeeded")
    return "Succeeded", "", runner._values(results, level, "steps"), results


def _run_group(runner: LocalRunner, planned: list, limit: int, level: Level) -> list[tuple[dict, TaskResult]]:
    """Every step of a group, its expanded children included, at most `limit` at once."""
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="step") as pool:
        outcomes = []
        for step, node, visit in planned:
            if not isinstance(visit, tuple):
                outcomes.append((step, node, None, visit))
                continue
            group, jobs = visit
            outcomes.append((step, node, group, [pool.submit(job) for job in jobs]))
        finished = []
        for step, node, group, outcome in outcomes:
            if group is None and isinstance(outcome, list):
                finished.append((step, outcome[0].result()))
            elif group is None:
                finished.append((step, outcome))
            else:
                finished.append((step, runner._group_result(group, [f.result() for f in outcome])))
    return finished
