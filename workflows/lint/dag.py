"""A DAG's dependencies: `dependencies` and `depends` name tasks of the same DAG, with valid
results, and never form a cycle (Argo would wait forever, so it refuses the workflow).

Mirrors validate.go's `validateDAG` (one task at least, names not starting with a digit, not
both `depends` and `dependencies`, no `continueOn` with `depends`), `verifyNoCycles`,
`validateDAGTargets` and common.ValidateTaskResults."""

from __future__ import annotations

import difflib
from typing import Any

from workflows.lint.depends import TASK_RESULTS, DependsSyntaxError, parse_depends, task_dependencies
from workflows.lint.findings import Finding, excerpt, key_path
from workflows.lint.walk import as_list, dag_tasks

_LOOPS = ("withItems", "withParam", "withSequence")
_LOOP_RESULTS = ("AnySucceeded", "AllFailed")  # only meaningful for a task that loops

Tasks = dict[str, tuple[str, dict[str, Any]]]  # task name -> (path, task)


def check_dag(dag: dict[str, Any], dag_path: str) -> list[Finding]:
    """Findings about the dependencies between the tasks of one DAG."""
    tasks: Tasks = {}
    for path, task in dag_tasks(dag, dag_path):
        if isinstance(task.get("name"), str):
            tasks.setdefault(task["name"], (path, task))
    findings: list[Finding] = []
    if not tasks and not any(True for _ in dag_tasks(dag, dag_path)):
        findings.append(Finding(key_path(dag_path, "tasks"), "a DAG needs at least one task"))
    written = [task for _, task in tasks.values()]
    using_depends = any(t.get("depends") for t in written)
    if using_depends and any(as_list(t.get("dependencies")) for t in written):
        message = "use either `depends` or `dependencies` in one DAG, not both"
        findings.append(Finding(key_path(dag_path, "tasks"), message))
    for name, (path, task) in tasks.items():
        if name[:1].isdigit() and (using_depends or as_list(task.get("dependencies"))):
            message = f"task name {excerpt(name)!r} may not start with a digit where depends or dependencies are used"
            findings.append(Finding(path, message))
        if using_depends and task.get("continueOn") is not None:
            message = "`continueOn` does not work with `depends`: depend on 'task.Failed' or 'task.Errored' instead"
            findings.append(Finding(key_path(path, "continueOn"), message))
    for path, task in tasks.values():
        findings += _check_dependencies_list(task, path, tasks)
        findings += _check_depends(task, path, tasks)
    target = dag.get("target")
    if isinstance(target, str):
        for name in target.split(" "):
            if name and "{{" not in name and name not in tasks:
                findings.append(Finding(key_path(dag_path, "target"), _no_such_task(name, tasks)))
    return findings + _check_cycles(tasks)


def _check_dependencies_list(task: dict[str, Any], path: str, tasks: Tasks) -> list[Finding]:
    return [
        Finding(f"{key_path(path, 'dependencies')}[{index}]", _no_such_task(name, tasks))
        for index, name in enumerate(as_list(task.get("dependencies")))
        if isinstance(name, str) and name not in tasks
    ]


def _check_depends(task: dict[str, Any], path: str, tasks: Tasks) -> list[Finding]:
    depends, path = task.get("depends"), key_path(path, "depends")
    if not isinstance(depends, str) or "{{" in depends:
        return []
    try:
        operands = parse_depends(depends)
    except DependsSyntaxError as error:
        return [Finding(path, f"cannot read {excerpt(depends)!r}: {error}")]
    findings: list[Finding] = []
    for name, result in operands:
        if name not in tasks:
            findings.append(Finding(path, _no_such_task(name, tasks)))
        elif result is not None and result not in TASK_RESULTS:
            message = f"{name}.{result}: {excerpt(result)!r} is not a task result ({', '.join(TASK_RESULTS)})"
            findings.append(Finding(path, message))
        elif result in _LOOP_RESULTS and not any(loop in tasks[name][1] for loop in _LOOPS):
            message = f"{name}.{result} needs {excerpt(name)!r} to loop (withItems, withParam or withSequence)"
            findings.append(Finding(path, message))
    return findings


def _no_such_task(name: str, tasks: Tasks) -> str:
    close = difflib.get_close_matches(name, sorted(tasks), n=1)
    return f"task {excerpt(name)!r} is not in this DAG" + (f"; did you mean {close[0]!r}?" if close else "")


def _check_cycles(tasks: Tasks) -> list[Finding]:
    """A finding per dependency cycle met by a depth-first walk, at its first task in the manifest."""
    waits_for = {
        name: list(dict.fromkeys(d for d, _ in task_dependencies(task) if d in tasks))
        for name, (_, task) in tasks.items()
    }
    position = {name: index for index, name in enumerate(tasks)}
    state: dict[str, str] = {}  # "open" while on the walk's current trail, "done" after
    cycles: list[list[str]] = []

    for root in waits_for:  # iterative: a DAG of thousands of tasks is deeper than Python's stack
        if root in state:
            continue
        trail: list[str] = [root]
        on_trail: dict[str, int] = {root: 0}
        state[root] = "open"
        stack = [iter(waits_for[root])]
        while stack:
            dependency = next(stack[-1], None)
            if dependency is None:
                stack.pop()
                done = trail.pop()
                del on_trail[done]
                state[done] = "done"
            elif state.get(dependency) == "open":
                cycles.append(trail[on_trail[dependency] :])
            elif dependency not in state:
                state[dependency] = "open"
                on_trail[dependency] = len(trail)
                trail.append(dependency)
                stack.append(iter(waits_for[dependency]))
    findings: list[Finding] = []
    for cycle in cycles:
        order = cycle[::-1]  # in running order: in `a -> b`, b waits for a
        start = order.index(min(order, key=position.__getitem__))
        order = order[start:] + order[:start]
        findings.append(Finding(tasks[order[0]][0], "dependency cycle: " + " -> ".join([*order, order[0]])))
    return findings
