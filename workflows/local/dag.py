"""A DAG template's scheduling rules as Argo's controller applies them (controller/dag.go,
workflow/common/ancestry.go), for a runner that starts one task at a time."""

from __future__ import annotations

import re

from workflows.local.expr import ExprError, evaluate_bool
from workflows.local.templating import TemplateError

# common/ancestry.go taskNameRegex / taskResultRegex.
TASK_NAME = re.compile(r"([a-zA-Z0-9][-a-zA-Z0-9]*?\.[A-Z][a-zA-Z]+)|([a-zA-Z0-9][-a-zA-Z0-9]*)")
TASK_RESULT = re.compile(r"([a-zA-Z0-9][-a-zA-Z0-9]*?\.[A-Z][a-zA-Z]+)")
RESULTS = ("Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed")
DAG_FIELDS = {"tasks", "target", "failFast"}


def _expand(name: str, tasks: dict[str, dict]) -> str:
    """ancestry.go expandDependency: a plain dependency also admits the results its own
    continueOn lets through."""
    results = ["Succeeded", "Skipped", "Daemoned"]
    continue_on = (tasks.get(name) or {}).get("continueOn") or {}
    if continue_on.get("error"):
        results.append("Errored")
    if continue_on.get("failed"):
        results.append("Failed")
    return "(" + " || ".join(f"{name}.{r}" for r in results) + ")"


def continues_on(task: dict, phase: str) -> bool:
    """wfv1.DAGTask.ContinuesOn: whether the task's continueOn admits a Failed or Error phase."""
    continue_on = task.get("continueOn") or {}
    return bool(continue_on.get("failed") if phase == "Failed" else continue_on.get("error") if phase == "Error"
                else False)


def dependencies(task: dict, where: str, tasks: dict[str, dict] | None = None) -> tuple[list[str], str]:
    """ancestry.go GetTaskDependencies: the tasks a task waits for and its resolved depends logic."""
    tasks = tasks or {}
    if task.get("depends"):
        depends = task["depends"]
        for match in TASK_RESULT.findall(depends):
            name, result = match.split(".", 1)
            if result not in RESULTS:
                raise TemplateError(f"{where}.depends: task result '{result}' for task '{name}' is invalid")
    else:
        depends = " && ".join(_expand(d, tasks) for d in task.get("dependencies", []))
    names: list[str] = []
    expanded, last = [], 0
    for match in TASK_NAME.finditer(depends):
        if match.group(1):
            name = match.group(1).split(".")[0]
        else:
            name = match.group(2)
            expanded += [depends[last:match.start()], _expand(name, tasks)]
            last = match.end()
        if name not in names:
            names.append(name)
    expanded.append(depends[last:])
    return names, "".join(expanded)


def depends_allows(logic: str, results: dict[str, tuple[str, list[str]]]) -> bool:
    """dag.go evaluateDependsLogic: the logic over each dependency's phase (names with - as _).
    `results` maps a task to its phase and, for a fan-out (a TaskGroup), its children's phases:
    `AnySucceeded` is true when one child Succeeded, `AllFailed` when there are children and
    every one Failed (Error is not Failed); both are false for a task that did not fan out."""
    scope = {}
    for name, (phase, children) in results.items():
        scope[name.replace("-", "_")] = {
            "Succeeded": phase == "Succeeded", "Failed": phase == "Failed", "Errored": phase == "Error",
            "Skipped": phase == "Skipped", "Omitted": phase == "Omitted", "Daemoned": False,
            "AnySucceeded": any(c == "Succeeded" for c in children),
            "AllFailed": bool(children) and all(c == "Failed" for c in children)}
    try:
        return evaluate_bool(logic.replace("-", "_"), scope)
    except ExprError as exc:
        raise ExprError(f"unable to evaluate expression '{logic.replace('-', '_')}': {exc}") from None


def targets(dag: dict, deps: dict[str, list[str]]) -> list[str]:
    """dag.go executeDAG: `target` (space-separated) or every task nothing depends on."""
    if dag.get("target"):
        return dag["target"].split(" ")
    depended = {d for names in deps.values() for d in names}
    return [name for name in deps if name not in depended]


def needed(goals: list[str], deps: dict[str, list[str]]) -> set[str]:
    """Argo starts from the targets and walks up their dependencies; nothing else runs."""
    seen: set[str] = set()
    stack = list(goals)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(deps[name])
    return seen


def assess(goals: list[str], deps: dict[str, list[str]], phases: dict[str, str], fail_fast: bool,
           shutdown: bool, tasks: dict[str, dict] | None = None) -> str:
    """dag.go assessDAGPhase: each target's phase, an omitted or skipped one inheriting its
    branch's (Failed/Error preferred); the DAG fails on a failed target, else succeeds."""
    if shutdown:
        return "Failed"
    memo: dict[str, str] = {}

    def branch(name: str) -> str:
        if name not in memo:
            phase = phases.get(name, "")
            if phase in ("Succeeded", "Failed", "Error") or not phase:
                memo[name] = phase
            else:
                inherited = [branch(d) for d in deps[name]] or ["Succeeded"]
                memo[name] = next((p for p in inherited if p in ("Failed", "Error")), "Succeeded")
        return memo[name]

    result = "Succeeded"
    for name in goals:
        phase = branch(name)
        if not phase:
            result = "Running"
            if not fail_fast:
                break
        elif phase in ("Failed", "Error"):
            if continues_on((tasks or {}).get(name) or {}, phase):
                continue  # a target whose continueOn admits its phase does not fail the DAG
            result = phase
            if fail_fast:
                break
    return result
