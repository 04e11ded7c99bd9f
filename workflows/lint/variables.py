"""`{{...}}` variables must resolve, as Argo's `resolveAllVariables` (validate.go) requires.

Argo checks every tag that starts with `item.`, `steps.`, `inputs.`, `outputs.`, `pod.`,
`workflow.` or `tasks.` (`checkValidWorkflowVariablePrefix`) against the scope of the place it
is written in, and skips expression tags (`{{=...}}`) and any other prefix:

- a leaf template (container, script, resource, ...): its own inputs, `pod.name` for a pod,
  the workflow globals (`validateLeaf`);
- a step or DAG task: the outputs of the steps before it or of the tasks of its DAG, `status`
  only of a task it depends on, `item.*` of its own loop (`validateSteps`, `validateDAG`,
  `addOutputsToScope`, `addItemsToScope`); the outputs of a steps or DAG template and a DAG's
  `target` likewise (`validateOutputs`);
- `workflow.*`: the names `newTemplateValidationCtx` and `Workflow` put in `globalParams`
  (see `globals.py`).

Where the template a step calls lives outside the files given, any `steps.X.*` is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from workflows.lint.depends import task_dependencies
from workflows.lint.findings import Finding, excerpt, item_path, key_path
from workflows.lint.globals import Globals
from workflows.lint.model import Manifest, template_kind
from workflows.lint.walk import as_list, dag_tasks, names, strings, top_templates

TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)  # as Argo's fasttemplate splits them
_CHECKED_PREFIXES = ("item.", "steps.", "inputs.", "outputs.", "pod.", "workflow.", "tasks.")
_ALWAYS = ("outputs.", "tasks.name", "steps.name", "node.name")
LEAF_KINDS = ("container", "containerSet", "script", "resource", "data", "http", "plugin")
POD_KINDS = ("container", "containerSet", "script", "resource", "data")
_NODE_FIELDS = ("id", "startedAt", "finishedAt", "hostNodeName")


@dataclass
class Scope:
    """What the strings at one place may refer to (one of Argo's validation scopes)."""

    template: str
    inputs: set[str]  # full tags: "inputs.parameters.x", "inputs.artifacts.y.path", ...
    pod: bool = False
    items: set[str] | None = None  # allowed `item.*` tags; None: none; {"*"}: any (withParam)
    nodes: Callable[[str, list[str]], str | None] | None = None  # judges steps./tasks. tags
    kind: str = ""  # "steps" or "tasks" when nodes is set


def check_variables(m: Manifest) -> list[Finding]:
    """Findings for variables that do not resolve in the manifest's own templates."""
    globals_ = m.globals
    findings: list[Finding] = []
    for path, template in top_templates(m.spec, m.spec_path):
        findings += check_template(m, template, path, globals_)
    return findings


def check_template(m: Manifest, template: dict[str, Any], path: str, globals_: Globals) -> list[Finding]:
    """Mirrors validateTemplate: a leaf is checked whole, steps and DAGs step by step."""
    kind = template_kind(template)
    scope = Scope(str(template.get("name", "")), input_tags(template, kind in LEAF_KINDS), kind in POD_KINDS)
    if kind == "steps":
        return _check_steps(m, template, path, scope, globals_)
    if kind == "dag":
        return _check_dag(m, template, path, scope, globals_)
    return list(_check_strings(template, path, scope, globals_))


def input_tags(template: dict[str, Any], leaf: bool) -> set[str]:
    """validateInputs: the `inputs.*` tags a template's own inputs put in scope."""
    inputs = template.get("inputs") if isinstance(template.get("inputs"), dict) else {}
    tags = {f"inputs.parameters.{n}" for n in names(inputs.get("parameters"))}
    if as_list(inputs.get("parameters")):
        tags.add("inputs.parameters")
    for name in names(inputs.get("artifacts")):
        tags.add(f"inputs.artifacts.{name}")
        if leaf:
            tags.add(f"inputs.artifacts.{name}.path")
    return tags


PLACEHOLDER = "__placeholder__"


def flatten(text: str) -> tuple[str, list[str]]:
    """`text` with each tag nested in another (`{{steps.run-{{inputs.parameters.d}}.status}}`)
    replaced by a placeholder, as ProcessArgs substitutes the inner one first, and those inner
    tags."""
    out: list[str] = []
    inner: list[str] = []
    position, depth = 0, 0
    while position < len(text):
        if text.startswith("{{", position):
            end = text.find("}}", position)
            if depth and end >= 0:
                inner.append(text[position + 2 : end])
                out.append(PLACEHOLDER)
                position = end + 2
                continue
            depth = 1
            out.append("{{")
            position += 2
        elif text.startswith("}}", position) and depth:
            depth = 0
            out.append("}}")
            position += 2
        else:
            out.append(text[position])
            position += 1
    return "".join(out), inner


def node_name(name: str) -> str:
    """A step name as Argo sees it once its own `{{...}}` are substituted."""
    return TAG.sub(PLACEHOLDER, name) if "{{" in name else name


def _check_strings(value: Any, path: str, scope: Scope, globals_: Globals, skip: str = "") -> Iterator[Finding]:
    for string_path, text in strings(value, path, skip):
        if "{{" not in text:
            continue
        text, inner = flatten(text)
        for tag in [t.strip() for t in inner] + [m.group(1).strip() for m in TAG.finditer(text)]:
            message = _problem(tag, scope, globals_)
            if message:
                yield Finding(string_path, f"{{{{{excerpt(tag, 60)}}}}}: {message}")


def _problem(tag: str, scope: Scope, globals_: Globals) -> str | None:
    if tag.startswith("=") or not tag.startswith(_CHECKED_PREFIXES) or tag.startswith(_ALWAYS):
        return None
    head = tag.split(".", 1)[0]
    if head == "workflow":
        return globals_.problem(tag)
    if head == "inputs":
        if tag in scope.inputs:
            return None
        return f"template {scope.template!r} has no such input" + _inputs_hint(scope)
    if head == "pod":
        if tag == "pod.name" and scope.pod:
            return None
        return "only `{{pod.name}}` exists, and only in a template that runs a pod"
    if head == "item":
        if scope.items is not None and ("*" in scope.items or tag in scope.items):
            return None
        if scope.items is None:
            return "`item` exists only in a step or task with withItems, withParam or withSequence"
        return f"the withItems entries have no such key (they have {', '.join(sorted(scope.items)) or 'none'})"
    # steps. / tasks.
    if scope.nodes is None or scope.kind != head:
        where = "a DAG" if head == "tasks" else "a steps template"
        return f"`{head}.` references work only inside {where}"
    return scope.nodes(tag, tag.split("."))


def _inputs_hint(scope: Scope) -> str:
    declared = sorted(t for t in scope.inputs if t.count(".") == 2)
    return f" (declared: {', '.join(declared)})" if declared else " (it declares no inputs)"


# --- outputs a step or task exposes (addOutputsToScope) -----------------------------------


def node_tags(kind: str, name: str, template: dict[str, Any] | None, aggregate: bool) -> set[str] | None:
    """The tags a step or task `name` running `template` adds; None: template unknown, any goes."""
    if template is None:
        return None
    tags = {f"{kind}.{name}.{f}" for f in _NODE_FIELDS}
    if template.get("daemon") is True:
        tags.add(f"{kind}.{name}.ip")
    ttype = template_kind(template)
    container_set = template.get("containerSet") if isinstance(template.get("containerSet"), dict) else {}
    if ttype in ("container", "script", "data", "http", "plugin") or (
        ttype == "containerSet" and "main" in names(container_set.get("containers"))
    ):
        tags |= {f"{kind}.{name}.outputs.result", f"{kind}.{name}.exitCode"}
    outputs = template.get("outputs") if isinstance(template.get("outputs"), dict) else {}
    tags |= {f"{kind}.{name}.outputs.parameters.{p}" for p in names(outputs.get("parameters"))}
    tags |= {f"{kind}.{name}.outputs.artifacts.{a}" for a in names(outputs.get("artifacts"))}
    if aggregate:
        tags.add(f"{kind}.{name}.outputs.parameters")
        if ttype in ("script", "containerSet"):
            tags |= {f"{kind}.{name}.outputs.result", f"{kind}.{name}.exitCode"}
    return tags


def has_exit_hook(caller: dict[str, Any]) -> bool:
    """HasExitHook: an `onExit` or an `exit` lifecycle hook."""
    hooks = caller.get("hooks")
    return bool(caller.get("onExit")) or (isinstance(hooks, dict) and "exit" in hooks)


def loops(caller: dict[str, Any]) -> bool:
    return bool(as_list(caller.get("withItems"))) or bool(caller.get("withParam"))


def item_tags(caller: dict[str, Any]) -> set[str] | None:
    """addItemsToScope: the `item.*` tags a step's or task's loop defines."""
    items = as_list(caller.get("withItems"))
    if items:
        tags: set[str] = set()
        for item in items:
            if isinstance(item, dict):
                tags |= {f"item.{key}" for key in item}
            elif isinstance(item, list):
                tags |= {f"item.[{i}]" for i in range(len(item))}
        return tags
    if caller.get("withParam"):
        return {"*"}
    if isinstance(caller.get("withSequence"), dict):
        return set()
    return None


@dataclass
class _Caller:
    path: str
    order: int
    tags: set[str] | None
    template: dict[str, Any] | None
    deps: list[str] = field(default_factory=list)


def _callee(m: Manifest, caller: dict[str, Any]) -> dict[str, Any] | None:
    return m.resolve(caller)


def _inline_scope(scope: Scope, caller: dict[str, Any]) -> Scope:
    inline = caller.get("inline")
    if not isinstance(inline, dict):
        return scope
    kind = template_kind(inline)
    return Scope(scope.template, scope.inputs | input_tags(inline, kind in LEAF_KINDS), scope.pod or kind in POD_KINDS,
                 scope.items, scope.nodes, scope.kind)


def _check_steps(m: Manifest, template: dict[str, Any], path: str, scope: Scope, globals_: Globals) -> list[Finding]:
    """validateSteps: a step sees the steps before it; `item.*` of every loop so far."""
    seen: dict[str, _Caller] = {}
    items: set[str] | None = None
    findings: list[Finding] = []
    order = 0
    later_names = {node_name(s["name"]) for g in as_list(template.get("steps")) for s in as_list(g)
                   if isinstance(s, dict) and isinstance(s.get("name"), str)}
    for group_index, group in enumerate(as_list(template.get("steps"))):
        for index, step in enumerate(as_list(group)):
            if not isinstance(step, dict):
                continue
            order += 1
            step_path = item_path(f"{key_path(path, 'steps')}[{group_index}]", index, step)
            name = node_name(step["name"]) if isinstance(step.get("name"), str) else ""
            step_items = item_tags(step)
            if step_items is not None:  # Argo adds them to the template's scope, not the step's
                items = (items or set()) | step_items
            current = _Caller(step_path, order, None, _callee(m, step))

            def judge(tag: str, parts: list[str], current: _Caller = current, name: str = name) -> str | None:
                other = seen.get(parts[1])
                if parts[1] == name and tag == f"steps.{name}.status":
                    return None
                if parts[1] == name and has_exit_hook(step):  # validateSteps adds its own outputs then
                    own = node_tags("steps", name, current.template, False)
                    return None if own is None or tag in own else f"step {name!r} does not produce this" + _offer(own)
                if other is None:
                    later = parts[1] == name or parts[1] in later_names
                    if later:
                        return f"step {excerpt(parts[1])!r} has not run yet at this point"
                    return f"there is no step {excerpt(parts[1])!r} in template {scope.template!r}"
                if tag == f"steps.{parts[1]}.status" or other.tags is None or tag in other.tags:
                    return None
                return f"step {excerpt(parts[1])!r} does not produce this" + _offer(other.tags)

            step_scope = _inline_scope(Scope(scope.template, scope.inputs, False, items, judge, "steps"), step)
            findings += _check_strings(step, step_path, step_scope, globals_)
            if name:
                seen[name] = _Caller(step_path, order, node_tags("steps", name, current.template, loops(step)),
                                     current.template)
    findings += _check_outputs(template, path, scope, globals_, seen, "steps")
    return findings


def _check_outputs(template: dict[str, Any], path: str, scope: Scope, globals_: Globals,
                   nodes: dict[str, _Caller], kind: str) -> list[Finding]:
    def judge(tag: str, parts: list[str]) -> str | None:
        other = nodes.get(parts[1])
        if other is None:
            return f"there is no {kind[:-1]} {excerpt(parts[1])!r} in template {scope.template!r}"
        if other.tags is None or tag in other.tags:
            return None
        return f"{kind[:-1]} {excerpt(parts[1])!r} does not produce this" + _offer(other.tags)

    outputs_scope = Scope(scope.template, scope.inputs, False, None, judge, kind)
    return list(_check_strings(template.get("outputs"), key_path(path, "outputs"), outputs_scope, globals_))


def _check_dag(m: Manifest, template: dict[str, Any], path: str, scope: Scope, globals_: Globals) -> list[Finding]:
    """validateDAG: a task sees the outputs of every task of its DAG, `status` of its ancestors."""
    dag_path = key_path(path, "dag")
    tasks: dict[str, _Caller] = {}
    raw: dict[str, dict[str, Any]] = {}
    for order, (task_path, task) in enumerate(dag_tasks(template.get("dag"), dag_path)):
        name = task.get("name")
        if isinstance(name, str) and name not in tasks:
            callee = _callee(m, task)
            tasks[name] = _Caller(task_path, order, node_tags("tasks", name, callee, loops(task)), callee)
            raw[name] = task
    ancestry = Ancestry(raw)
    findings: list[Finding] = []
    for name, current in tasks.items():
        task = raw[name]

        def judge(tag: str, parts: list[str], name: str = name) -> str | None:
            other = tasks.get(parts[1])
            if other is None:
                return f"there is no task {excerpt(parts[1])!r} in this DAG"
            if tag == f"tasks.{parts[1]}.status":
                if ancestry.is_ancestor(parts[1], name) or (parts[1] == name and "hooks" in task) \
                        or ancestry.unknown(name):
                    return None
                return f"the status of {excerpt(parts[1])!r} is known only to tasks that depend on it"
            if other.tags is None or tag in other.tags:
                return None
            aggregate = tag == f"tasks.{parts[1]}.outputs.parameters" and loops(raw[parts[1]])
            if aggregate and (ancestry.is_ancestor(parts[1], name) or ancestry.unknown(name)):
                return None
            return f"task {excerpt(parts[1])!r} does not produce this" + _offer(other.tags)

        task_scope = _inline_scope(Scope(scope.template, scope.inputs, False, item_tags(task), judge, "tasks"), task)
        findings += _check_strings(task, current.path, task_scope, globals_)
        findings += _check_argument_dependencies(task, current.path, tasks, ancestry, name)
    target_scope = Scope(scope.template, scope.inputs, False, None, lambda tag, parts: None, "tasks")
    dag = template.get("dag") if isinstance(template.get("dag"), dict) else {}
    findings += _check_strings(dag.get("target"), key_path(dag_path, "target"), target_scope, globals_)
    findings += _check_outputs(template, path, scope, globals_, tasks, "tasks")
    return findings


def _offer(tags: set[str]) -> str:
    shown = sorted(t.split(".", 2)[2] for t in tags if ".outputs." in t)
    return f" (it has: {', '.join(shown)})" if shown else " (it has no outputs)"


class Ancestry:
    """Which tasks of a DAG a task waits for, directly or not; searched on demand so that a
    DAG of many tasks costs little (validateDAGTaskArgumentDependency, GetTaskAncestry)."""

    def __init__(self, tasks: dict[str, dict[str, Any]]) -> None:
        declared = {name: [d for d, _ in task_dependencies(task)] for name, task in tasks.items()}
        self.deps = {name: [d for d in deps if d in tasks] for name, deps in declared.items()}
        # Tasks that wait for a task not in the DAG: its own finding (dag.py); their ancestry, and
        # that of every task after them, is unknown, so nothing more is judged from it.
        self.broken = {name for name, deps in declared.items() if any(d not in tasks for d in deps)}
        self._cache: dict[tuple[str, str], bool] = {}

    def unknown(self, task: str) -> bool:
        """Whether the task's ancestry goes through a task with an unknown dependency."""
        return task in self.broken or any(self.is_ancestor(b, task) for b in self.broken)

    def is_ancestor(self, ancestor: str, task: str) -> bool:
        key = (ancestor, task)
        if key not in self._cache:
            seen: set[str] = set()
            pending = list(self.deps.get(task, []))
            found = False
            while pending:
                name = pending.pop()
                if name == ancestor:
                    found = True
                    break
                if name not in seen:
                    seen.add(name)
                    pending += self.deps.get(name, [])
            self._cache[key] = found
        return self._cache[key]


def _check_argument_dependencies(task: dict[str, Any], path: str, tasks: dict[str, _Caller],
                                 ancestry: Ancestry, name: str) -> list[Finding]:
    """validateDAGTaskArgumentDependency: an argument taken from a task needs that task among the
    ancestors."""
    arguments = task.get("arguments") if isinstance(task.get("arguments"), dict) else {}
    findings: list[Finding] = []
    for kind, key in (("parameters", "value"), ("artifacts", "from")):
        list_path = key_path(key_path(path, "arguments"), kind)
        for index, argument in enumerate(as_list(arguments.get(kind))):
            value = argument.get(key) if isinstance(argument, dict) else None
            if not isinstance(value, str) or not value.startswith("{{tasks."):
                continue
            source = value.split(".")[1]
            if source in tasks and not ancestry.is_ancestor(source, name) and not ancestry.unknown(name):
                message = f"uses task {source!r} but does not depend on it: add it to `depends` or `dependencies`"
                findings.append(Finding(key_path(item_path(list_path, index, argument), key), message))
    return findings
