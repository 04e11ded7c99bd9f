"""Run a rendered WorkflowTemplate's DAG on this machine: `trainyard run --local`.

Not a second engine: it runs what Argo would run (each container template's command line as a
subprocess), with artifacts as folders and output parameters read from files. It supports what
trainyard's templates use and refuses anything else with a message naming the field.
"""

from __future__ import annotations

import json
import os
import posixpath
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from workflows.local import dag as dags
from workflows.local import checks, deadlines, fanout, memoize
from workflows.local import pod as pods
from workflows.local import retry
from workflows.local.artifacts import BucketArtifacts, LocalObjects
from workflows.local.checks import check_enums, check_parameter_names, without_nulls
from workflows.local.expr import ExprError
from workflows.local.status import write_status
from workflows.local.nodes import WORKFLOW_PHASE, Node, duration, failures, pod_name
from workflows.local import stepgroups
from workflows.local.inputs import sub_path
from workflows.local.outputs import nested_outputs
from workflows.local.podfs import paths_in, shared_paths
from workflows.local.process import Process
from workflows.local.template_io import (input_artifact_sources, input_parameters, keyed_inputs, skipped_default,
                                         with_paths)
from workflows.local.templating import NodeError, NotSupported, TemplateError, substitute
from workflows.local.when import WhenError, should_execute

NOT_STARTED_MESSAGE = "workflow shutdown with strategy: Stop"  # controller/workflowpod.go createWorkflowPod

@dataclass
class TaskResult:
    name: str
    status: str  # Argo's node phase: Succeeded | Failed | Error | Skipped | Omitted
    seconds: float = 0.0
    parameters: dict[str, str | None] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    log: Path | None = None
    message: str = ""
    artifact_keys: dict[str, str] = field(default_factory=dict)  # with --artifacts: each output's bucket key
    children: list[TaskResult] = field(default_factory=list)  # a withItems/withParam task's expanded tasks
    result: str | None = None  # outputs.result: the main container's stdout (executor.go CaptureScriptResult)
    exit_code: str | None = None  # outputs.exitCode
    nested: dict[str, TaskResult] = field(default_factory=dict)  # a dag or steps template's own tasks/steps
    hook: TaskResult | None = None  # its exit hook's run


@dataclass
class Level:
    """Where a dag or steps template runs: its node (the parent of its tasks' nodes), the
    variables it sees (workflow.*, its own inputs.*), its input artifacts, and its folder."""

    node: Node
    values: dict[str, str | None]
    inputs: dict[str, Path] = field(default_factory=dict)  # inputs.artifacts.NAME -> folder
    folder: str = ""  # under the run folder, ending in / when not empty
    prefix: str = "tasks"  # how its tasks are named in variables: tasks.NAME or steps.NAME
    on_exit: bool = False  # the exit handler or an exit hook: its pods are not held to the workflow's deadline


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    tasks: dict[str, TaskResult]
    phase: str = "Succeeded"  # the workflow's phase: Succeeded | Failed | Error
    stopped: bool = False
    # What the runner refused mid-run ("task: reason"): that task ended Error, which is not
    # necessarily what Argo would give, so the run's outcome is not Argo's either.
    refusals: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.phase == "Succeeded"


class LocalRunner:
    def __init__(
        self,
        manifest: dict[str, Any],
        run_dir: Path,
        parameters: dict[str, str],
        secrets: dict[tuple[str, str], str] | None = None,
        echo: Callable[[str], None] = print,
        cwd: Path | None = None,
        artifacts: BucketArtifacts | None = None,
        parallel: int = 1,
        entrypoints: Mapping[str, list[str]] | None = None,
        previous: Mapping[str, TaskResult] | None = None,
        workdir: str | None = None,
        shared: Iterable[Path | str] = (),
        images: Mapping[str, Path] | None = None,
    ):
        """`entrypoints`: an image's ENTRYPOINT as a local command, for containers that give no
        `command` (Argo runs the image's; without an entry here such a container is refused).
        `previous`: the succeeded tasks of an earlier attempt of this run (`trainyard retry`),
        kept as they are, as `argo retry` keeps succeeded nodes; the others run again.
        `workdir`: the images' working directory as a container path (Docker's default is `/`), in
        each pod's own folder; without it steps run in `cwd`, the project trainyard's images hold.
        `shared`: more paths of this machine that steps see as they are (podfs.py), besides the run's
        folder, the runs folder, `cwd` and the paths given as parameters. `images`: a folder standing in
        for an image's own files (its programs at their paths), read where the image has a file."""
        manifest = without_nulls(manifest)  # Go decodes `key: null` as a field not set
        self.entrypoints = dict(entrypoints or {})
        self.workdir = workdir
        self.images = dict(images or {})
        self.manifest = manifest
        self.spec = manifest.get("spec", {})
        self.run_dir = run_dir
        self.run_id = run_dir.name
        self.secrets = secrets or {}
        self.echo = echo
        self.cwd = cwd or Path.cwd()
        self.artifacts = artifacts
        self.objects = LocalObjects(run_dir / "objects")  # keyed outputs, without --artifacts
        self.templates = {t.get("name"): t for t in self.spec.get("templates", []) if isinstance(t, dict)}
        self.check_supported()
        self.parameters = self._workflow_parameters(parameters)
        # This machine's paths the steps see as they are (podfs.py): the run's, the project's, the given ones.
        self.shared_paths = shared_paths([run_dir, run_dir.parent, self.cwd, *shared, *paths_in(parameters.values())])
        self.parallel = parallel  # pods at once, like --parallel; Argo's `parallelism` fields bound it too
        self._processes: dict[Process, bool] = {}  # running steps, each with whether it is an exit handler's
        self._deadline: datetime | None = None  # the workflow's (spec.activeDeadlineSeconds)
        self._past_deadline = False
        self._lock = threading.Lock()
        self._stopping = self._stopped = False
        self._terminating = False
        self._in_exit_handler = False
        self._exit_values: dict[str, str] = {}
        self.refusals: list[str] = []
        self.previous = {name: r for name, r in (previous or {}).items() if r.status == "Succeeded"}

    # -- validation ---------------------------------------------------------------------------
    def check_supported(self) -> None:
        checks.check_manifest(self.spec, self.templates, self.entrypoints, self.echo)

    def _workflow_parameters(self, given: dict[str, str]) -> dict[str, str]:
        declared_list = self.spec.get("arguments", {}).get("parameters", [])
        declared = {p["name"]: p.get("value") for p in declared_list}
        check_parameter_names(given, declared)
        values = {**declared, **given}
        missing = [name for name, value in values.items() if value is None]
        if missing:
            raise TemplateError(f"workflow parameter {missing[0]!r} has no default: pass -p {missing[0]}=VALUE")
        check_enums(values, declared_list)
        return {name: str(value) for name, value in values.items()}

    # -- stopping -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Like `argo stop`: the running step gets SIGTERM, nothing new starts, the exit handler
        still runs and is not stopped (ShutdownStrategy Stop: ShouldExecute(true) for onExit pods).
        A second stop is `argo terminate`: whatever runs, the exit handler included, is killed."""
        self.echo(self._stop())

    def _on_signal(self, signum: int, frame: object) -> None:
        # A signal handler may interrupt a print: write straight to the file descriptor instead.
        os.write(2, f"\n{self._stop()}\n".encode())

    def _stop(self) -> str:
        if self._stopped:
            self._terminating = True
            self._stop_processes(grace=0)
            return "Terminating: killing the running step"
        self._stopping = self._stopped = True
        if self._in_exit_handler:
            return "Stopping: the exit handler runs to its end (Ctrl-C again to kill it)"
        self._stop_processes()
        return "Stopping: the running step gets SIGTERM; the exit handler still runs (Ctrl-C again to kill it)"

    def _stop_processes(self, **grace: float) -> None:
        with self._lock:
            running = list(self._processes)
        for process in running:
            process.stop(**grace)

    def _deadline_passed(self) -> None:
        """The workflow's deadline: its running steps end (SIGTERM, then SIGKILL after the grace
        period), the exit handler's and exit hooks' excepted; nothing due later starts."""
        self._past_deadline = True
        self.echo(f"Workflow deadline {deadlines.go_time(self._deadline)} passed: running steps are stopped")
        with self._lock:
            running = [process for process, on_exit in self._processes.items() if not on_exit]
        for process in running:
            process.stop(reason="workflow-deadline")

    @contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, self._on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- execution ----------------------------------------------------------------------------
    def run(self) -> RunResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._started = datetime.now(timezone.utc)
        entry = self.templates[self.spec["entrypoint"]]
        self.root = Node(self.run_id, self.run_id, entry["name"], started_at=self._started)
        self._results: dict[str, TaskResult] = {}  # the entry dag's tasks, as they finish
        self._write_status()
        self._deadline = deadlines.workflow_deadline(self.spec, self._started)
        timer = None
        if self._deadline is not None:
            timer = threading.Timer(max(0.0, (self._deadline - datetime.now(timezone.utc)).total_seconds()),
                                    self._deadline_passed)
            timer.daemon = True
            timer.start()
        with self._signals():
            # operator.go operate: the entrypoint runs with the workflow's arguments as its arguments.
            arguments = {"parameters": [{"name": k, "value": v} for k, v in self.parameters.items()]}
            task = {"name": self.run_id, "template": entry["name"], "arguments": arguments, "folder": ""}
            level = Level(self.root, self._values({}, None))
            try:
                done = self._run_task(task, self.root, {}, level.values, level)
            except TemplateError as exc:
                done = self._could_not_run(self.root, exc)
            if timer is not None:
                timer.cancel()
            results = done.nested or {entry["name"]: done}
            phase = self.root.phase if self.root.phase != "Running" else done.status
            self.root.finish(phase, self.root.message)
            workflow_phase = WORKFLOW_PHASE[phase]
            if self.spec.get("onExit") and not self._terminating:
                exit_result = self._run_exit_handler(self.spec["onExit"], results, workflow_phase)
                results[self.spec["onExit"]] = exit_result
                # operator.go operate: a succeeded workflow whose exit handler fails is Failed/Error.
                if workflow_phase == "Succeeded" and exit_result.status in ("Failed", "Error"):
                    workflow_phase = exit_result.status
        self._write_status(workflow_phase)
        return RunResult(self.run_id, self.run_dir, results, workflow_phase, stopped=self._stopped,
                         refusals=self.refusals)

    def _write_status(self, phase: str = "Running") -> None:
        """`<run>/status.json`: the run as it stands (what `trainyard get`, `runs`, `logs -f` and
        `retry` read): the workflow's phase and this runner's pid, every node, each done task's outputs."""
        write_status(self.run_dir, phase, self.root, self._results)

    def _run_dag(self, template: dict, results: dict[str, TaskResult], level: Level) -> str:
        dag = template["dag"]
        tasks = {t["name"]: t for t in dag["tasks"]}
        where = f"template {template['name']!r}"
        resolved = {name: dags.dependencies(task, f"{where}.dag.tasks.{name}", tasks) for name, task in tasks.items()}
        deps = {name: r[0] for name, r in resolved.items()}
        self._check_acyclic(deps)
        # operator.go: the workflow's parameters are substituted into the spec before it runs.
        dag = {**dag, "target": substitute(str(dag.get("target") or ""), level.values, f"{where}.dag.target")}
        unknown = [t for t in dag["target"].split() if t not in tasks]
        if unknown:
            raise TemplateError(f"{where}.dag.target: unknown task {unknown[0]!r}")
        goals = dags.targets(dag, deps)
        todo = [name for name in tasks if name in dags.needed(goals, deps)]
        total = len(todo)
        # Argo starts every task whose dependencies are done, bounded by `parallelism`
        # (controller/operator.go checkParallelism); here also by --parallel.
        limit = self.pods_at_once(template)
        running: dict[Future[TaskResult], tuple[str, int]] = {}
        groups: dict[str, list[TaskResult | None]] = {}
        group_nodes: dict[str, Node] = {}
        # After a stop, Argo's next pass still walks the DAG from its targets (dag.go executeDAG):
        # tasks whose dependencies are done get Omitted/Skipped as usual, or a node that fails
        # without a pod. So the loop goes on; nothing new starts.
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="task") as pool:
            while todo or running:
                ready = [n for n in todo if all(d in results for d in deps[n])]
                for name in ready:
                    todo.remove(name)
                    self.echo(f"[{total - len(todo)}/{total}] {level.folder}{name}")
                    visit = self._visit(tasks[name], resolved[name][1], results, level)
                    if isinstance(visit, TaskResult):
                        self._finished(name, visit, results, total - len(todo), total, level)
                        continue
                    node, jobs = visit
                    if node is not None:
                        group_nodes[name] = node
                        groups[name] = [None] * len(jobs)
                    for index, job in enumerate(jobs):
                        running[pool.submit(job)] = (name, index)
                if not running:
                    if ready:
                        continue  # a task finished at once (skipped, omitted): look again
                    break  # nothing ready and nothing running: dependencies that never finish
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    name, index = running.pop(future)
                    result = future.result()
                    if name not in groups:
                        self._finished(name, result, results, total - len(todo), total, level)
                        continue
                    groups[name][index] = result
                    children = groups[name]
                    if all(child is not None for child in children):
                        finished = [c for c in children if c is not None]
                        del groups[name]
                        self._finished(name, self._group_result(group_nodes.pop(name), finished), results,
                                       total - len(todo), total, level)
        fail_fast = dag.get("failFast", True) is not False
        phases = {name: r.status for name, r in results.items()}
        return dags.assess(goals, deps, phases, fail_fast, shutdown=self._stopping, tasks=tasks)

    def pods_at_once(self, template: dict) -> int:
        """What may run at once under a template: --parallel, bounded by Argo's `parallelism`."""
        return max(1, min(n for n in (self.parallel, self.spec.get("parallelism"), template.get("parallelism"))
                          if isinstance(n, int) and n > 0))

    def _finished(self, name: str, result: TaskResult, results: dict[str, TaskResult], index: int, total: int,
                  level: Level) -> None:
        results[name] = result
        self._write_status()
        mark = {"Succeeded": "done", "Skipped": "skipped", "Omitted": "omitted"}.get(result.status, result.status.upper())
        self.echo(f"[{index}/{total}] {level.folder}{name} {mark} in {result.seconds:.1f}s"
                  + (f" ({result.message})" if result.message and result.status != "Succeeded" else ""))

    @staticmethod
    def _check_acyclic(deps: dict[str, list[str]]) -> None:
        try:
            list(TopologicalSorter(deps).static_order())
        except CycleError as exc:
            raise TemplateError(f"dag tasks form a cycle: {' -> '.join(exc.args[1])}") from None

    def _visit(self, task: dict, logic: str, results: dict[str, TaskResult], level: Level
               ) -> TaskResult | tuple[Node | None, list[Callable[[], TaskResult]]]:
        """dag.go executeDAGTask: depends logic (Omitted), then the expansion of withItems/withParam
        (a TaskGroup node), then each task's `when` (Skipped), then the template. Returns the
        finished result, or the group node (None for a plain task) and the jobs that run pods."""
        name = task["name"]
        node = Node(f"{level.node.name}.{name}", name, task["template"], started_at=datetime.now(timezone.utc))
        level.node.children.append(node)
        task = {**task, "folder": f"{level.folder}{name}"}
        if level.node is self.root and name in self.previous:  # `trainyard retry`: kept, outputs and all
            kept = self.previous[name]
            node.finish("Succeeded", "kept from the earlier attempt (retry)")
            return TaskResult(kept.name, "Succeeded", kept.seconds, parameters=kept.parameters, artifacts=kept.artifacts,
                              log=kept.log, message=node.message, artifact_keys=kept.artifact_keys)
        if logic:
            try:
                allowed = dags.depends_allows(logic, {d: (r.status, [c.status for c in r.children]) for d, r in results.items()})
            except ExprError as exc:
                return self._result(node.finish("Error", str(exc)))
            except TemplateError as exc:
                return self._refused(node, exc)
            if not allowed:
                return self._result(node.finish("Omitted", "omitted: depends condition not met"))
        return self._fan_out(task, node, results, self._values(results, level), level)

    def _fan_out(self, task: dict, node: Node, results: dict[str, TaskResult], values: dict[str, str | None],
                 level: Level) -> TaskResult | tuple[Node | None, list[Callable[[], TaskResult]]]:
        """The expansion of withItems/withParam/withSequence (dag.go expandTask, steps.go
        expandStep): a TaskGroup node whose children run the task; a plain task as it is."""
        name = task["name"]
        snapshot = dict(results)  # the jobs read their inputs from what was done when they were due
        loop = next((key for key in ("withItems", "withParam", "withSequence") if key in task), None)
        if loop is None:
            outcome = self._child(task, node, snapshot, values, level)
            return outcome if isinstance(outcome, TaskResult) else (None, [outcome])
        where = f"dag task {name!r}.{loop}"
        try:
            if loop == "withItems":
                items = fanout.parse_items(json.dumps(task["withItems"]), where)
            elif loop == "withParam":
                items = fanout.parse_items(substitute(str(task["withParam"]), values, where), where)
            else:
                items = fanout.sequence(task["withSequence"], values, f"dag task {name!r}")
            children = fanout.expand(name, items)
        except NodeError as exc:
            return self._result(node.finish("Error", str(exc)))
        except NotSupported as exc:
            return self._refused(node, exc)
        except TemplateError as exc:
            if "unknown variable" in str(exc):  # something Argo would resolve: ours is no Argo outcome
                return self._refused(node, exc)
            # dag.go executeDAGTask: an expansion error makes the task Error (expandTask).
            return self._result(node.finish("Error", str(exc)))
        if not children:
            return self._result(node.finish("Skipped", "Skipped, empty params"))
        jobs = []
        for child in children:
            child_node = Node(f"{level.node.name}.{child.name}", child.name, task["template"],
                              started_at=datetime.now(timezone.utc))
            node.children.append(child_node)
            child_task = {**task, "name": child.name, "folder": f"{task.get('folder', name)}/{child.index}"}
            outcome = self._child(child_task, child_node, snapshot, {**values, **child.values}, level)
            jobs.append((lambda done=outcome: done) if isinstance(outcome, TaskResult) else outcome)
        return node, jobs

    def _child(self, task: dict, node: Node, results: dict[str, TaskResult], values: dict[str, str | None],
               level: Level) -> TaskResult | Callable[[], TaskResult]:
        """A task (or an expanded child): its `when`, then a job running its template."""
        where = f"dag task {task['name']!r}"
        try:
            if task.get("when"):
                # dag.go executeDAGTask: the message quotes the `when` after resolveDependencyReferences
                # substituted it, as `argo get` shows it.
                when = substitute(task["when"], values, f"{where}.when")
                try:
                    proceed = should_execute(when)
                except WhenError as exc:
                    return self._result(node.finish("Error", f"Invalid 'when' expression '{when}': {exc}"))
                if not proceed:
                    return self._result(node.finish("Skipped", f"when '{when}' evaluated false"))
        except NodeError as exc:
            # dag.go executeDAGTask: a reference that cannot be resolved makes the task Error.
            return self._result(node.finish("Error", str(exc)))
        except TemplateError as exc:
            return self._refused(node, exc)

        def job() -> TaskResult:
            node.started_at = datetime.now(timezone.utc)  # when a slot (a pod) was free, as the pod's start
            self._write_status()
            if self._stopping:
                return self._result(node.finish("Failed", NOT_STARTED_MESSAGE))
            try:
                done = self._run_task(task, node, results, values, level)
            except TemplateError as exc:
                done = self._could_not_run(node, exc)
            self._exit_hook(task, done, results, values, level)
            return done

        return job

    def _exit_hook(self, task: dict, done: TaskResult, results: dict[str, TaskResult],
                   values: dict[str, str | None], level: Level) -> None:
        """A task's or step's exit hook (`onExit`, `hooks.exit`): dag.go/steps.go runOnExitNode runs
        it once the task completed, with the task's status and outputs in scope; its own outcome
        does not change the task's."""
        hook = (task.get("hooks") or {}).get("exit") or ({"template": task["onExit"]} if task.get("onExit") else None)
        if not hook or done.status not in ("Succeeded", "Failed", "Error"):
            return
        name = f"{task['name']}.onExit"
        node = Node(f"{level.node.name}.{name}", name, hook["template"], started_at=datetime.now(timezone.utc))
        level.node.children.append(node)
        own = {**values, **self._values({task["name"]: done}, Level(level.node, {}, prefix=level.prefix),
                                        prefix=level.prefix)}
        # exit_handler.go resolveExitTmplArgument: the hook's arguments are substituted with no strict
        # prefixes, so a reference that cannot be resolved (a failed step's missing output) stays as
        # written; each resolved value then reaches the hook as it is.
        arguments = dict(hook.get("arguments") or {})
        resolved: list[dict] = []
        try:
            for index, param in enumerate(arguments.get("parameters") or []):
                tag = str(param.get("value", "")).strip()
                if tag.startswith("{{") and tag.endswith("}}") and own.get(tag[2:-2].strip(), "") is None:
                    resolved.append(param)  # an absent optional: input_parameters treats it as not given
                    continue
                own[f"hook.argument.{index}"] = substitute(str(param.get("value", "")), own, f"{name}.arguments",
                                                           keep_unknown=True)
                resolved.append({**param, "value": f"{{{{hook.argument.{index}}}}}"})
        except TemplateError as exc:
            done.hook = self._could_not_run(node, exc)
            return
        hook_task = {"name": name, "template": hook["template"], "arguments": {**arguments, "parameters": resolved},
                     "folder": f"{task.get('folder', task['name'])}.onExit"}
        self.echo(f"  {task['name']}: exit hook {hook['template']}")
        try:
            done.hook = self._run_task(hook_task, node, {**results, task["name"]: done}, own,
                                       replace(level, on_exit=True))
        except TemplateError as exc:
            done.hook = self._could_not_run(node, exc)

    def _could_not_run(self, node: Node, exc: TemplateError) -> TaskResult:
        """A task that ended before its pod ran: Error as on Argo (NodeError), else refused."""
        if isinstance(exc, NodeError):
            return self._result(node.finish("Error", str(exc)))
        return self._refused(node, exc)

    def _refused(self, node: Node, exc: TemplateError) -> TaskResult:
        """A refusal found mid-run (a variable or construct the runner cannot resolve): the task
        ends Error so that the run still ends as a run does (dependants omitted, the exit handler,
        the summary), and the run records that its outcome is not Argo's."""
        with self._lock:
            self.refusals.append(f"{node.display_name}: {exc}")
        return self._result(node.finish("Error", f"refused by the local runner: {exc}"))

    def _group_result(self, node: Node, children: list[TaskResult]) -> TaskResult:
        """The TaskGroup's phase and its children's outputs aggregated as Argo shapes them."""
        node.finish(fanout.group_phase([c.status for c in children]))
        parameters = fanout.aggregate([(c.status, c.parameters) for c in children])
        result = fanout.aggregate_results([(c.status, c.result) for c in children])
        return TaskResult(node.display_name, node.phase, node.seconds, parameters=parameters, children=children,
                          result=result)

    def _result(self, node: Node, **kwargs: Any) -> TaskResult:
        if node.phase in ("Skipped", "Omitted"):
            # scope.go addSkippedNodeOutputsToScope: a skipped producer's outputs are its
            # valueFrom.default, or absent (None) when it has none.
            template = self.templates[node.template_name]
            kwargs["parameters"] = {p["name"]: skipped_default(p) for p in template.get("outputs", {}).get("parameters", [])}
        return TaskResult(node.display_name, node.phase, node.seconds, message=node.message, **kwargs)

    def _run_exit_handler(self, name: str, results: dict[str, TaskResult], workflow_phase: str) -> TaskResult:
        """operator.go operate: after the DAG, whatever its outcome (also on stop), with the
        workflow's status variables in Argo's formats."""
        self._stopping = False  # a stopped workflow still runs its exit handler (ShouldExecute(true))
        self._in_exit_handler = True
        self._exit_values = {
            "workflow.status": workflow_phase,
            "workflow.failures": failures(self.run_id, self.root),
            "workflow.creationTimestamp": self._started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "workflow.duration": duration(self._started),
        }
        self.echo(f"[exit] {name}")
        node = Node(f"{self.run_id}.onExit", f"{self.run_id}.onExit", name, started_at=datetime.now(timezone.utc))
        # An exit handler sees workflow variables only, no task outputs (as on Argo).
        level = Level(node, self._values({}, None), folder="", on_exit=True)
        try:
            result = self._run_task({"name": name, "template": name}, node, {}, level.values, level)
        except TemplateError as exc:
            result = self._could_not_run(node, exc)
        self.echo(f"[exit] {name} {'done' if result.status == 'Succeeded' else result.status.upper()} in {result.seconds:.1f}s")
        return result

    def _values(self, results: dict[str, TaskResult], level: Level | None, prefix: str = "tasks"
                ) -> dict[str, str | None]:
        if level is None:
            values: dict[str, str | None] = {f"workflow.parameters.{k}": v for k, v in self.parameters.items()}
            values["workflow.name"] = self.run_id
            values["workflow.namespace"] = "local"
        else:
            values = dict(level.values)
        values.update(self._exit_values)
        for task, result in results.items():
            for param, value in result.parameters.items():
                # A TaskGroup's "" entry is `tasks.T.outputs.parameters`, the list of maps.
                values[f"{prefix}.{task}.outputs.parameters" + (f".{param}" if param else "")] = value
            values[f"{prefix}.{task}.status"] = result.status
            if result.result is not None:
                values[f"{prefix}.{task}.outputs.result"] = result.result
            if result.exit_code is not None:
                values[f"{prefix}.{task}.outputs.exitCode"] = result.exit_code
                values[f"{prefix}.{task}.exitCode"] = result.exit_code  # variables.md: steps.<NAME>.exitCode
        return values

    def _run_task(self, task: dict, node: Node, results: dict[str, TaskResult], values: dict[str, str | None],
                  level: Level) -> TaskResult:
        """operator.go executeTemplate: the template a task or step names, with its arguments."""
        name = task["name"]
        where = f"dag task {name!r}"
        template = self.templates[task["template"]]
        task_dir = self.run_dir / task.get("folder", name)  # an expanded task's: <task>/<index>
        task_dir.mkdir(parents=True, exist_ok=True)
        arguments = task.get("arguments", {})
        inputs = input_parameters(template, arguments, values, where)
        sources = self._input_artifacts(template, arguments, results, level, task_dir, values, where)
        if "dag" in template or "steps" in template:
            return self._run_nested(template, node, inputs, sources, task.get("folder", name), level.on_exit)
        local_values = {**values, **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        tmpl_where = f"template {template['name']!r}"
        template = with_paths(template, local_values, tmpl_where)
        log = task_dir / "log.txt"
        cache, key = None, ""
        if template.get("memoize"):
            try:
                cache, key, hit = self._memoized(template, local_values, tmpl_where)
            except TemplateError as exc:
                # operator.go executeTemplate: a bad key or maxAge marks the node Error.
                return self._result(node.finish("Error", str(exc)))
            if hit is not None:
                self.echo(f"  {name}: memoized: outputs of cache entry {key}, no pod")
                return self._result(node.finish("Succeeded"), log=None, **hit)
        strategy = template.get("retryStrategy")
        if strategy is not None:  # substituted with the template's inputs, as the rest of it is
            strategy = {k: substitute(v, local_values, f"{tmpl_where}.retryStrategy.{k}") if isinstance(v, str) else v
                        for k, v in strategy.items()}
        attempts: list[Node] = []
        while True:
            attempt = node if strategy is None else Node(
                f"{node.name}({len(attempts)})", f"{node.display_name}({len(attempts)})", node.template_name,
                started_at=datetime.now(timezone.utc))
            if strategy is not None:
                node.children.append(attempt)
            attempts.append(attempt)
            # operator.go executeTemplate: each attempt gets its own {{pod.name}} and, with a
            # retryStrategy, {{retries}} (the attempt's number).
            attempt_values = {**local_values, "pod.name": pod_name(self.run_id, attempt.name, template["name"])}
            if strategy is not None:
                attempt_values["retries"] = str(len(attempts) - 1)
            parameters, stdout, pod = self._pod(template, pods.folder(task_dir, len(attempts) - 1), sources, arguments,
                                                attempt_values, attempt, log, name, level.on_exit, tmpl_where)
            if attempt.phase == "Succeeded" or strategy is None:
                break
            if self._stopping:
                # operator.go processNodeRetries: no retry once the workflow is shutting down.
                node.finish(attempt.phase, "Stopped with strategy 'Stop'")
                break
            if self._past_deadline and not level.on_exit:
                node.finish(attempt.phase, f"retry exceeded workflow deadline {deadlines.go_time(self._deadline)}")
                break
            try:
                again, message, wait = retry.decide(strategy, attempts, f"{tmpl_where}.retryStrategy")
            except ExprError as exc:
                # operator.go executeTemplate: a processNodeRetries error marks the Retry node Error.
                node.finish("Error", f"unable to evaluate expression '{strategy.get('expression')}': {exc}")
                break
            if not again:
                node.finish(attempt.phase, message)
                break
            if wait and not self._sleep(wait, f"  {name}: backoff for {wait:.0f}s"):
                node.finish(attempt.phase, "Stopped with strategy 'Stop'" if self._stopping else
                            f"retry exceeded workflow deadline {deadlines.go_time(self._deadline)}")
                break
            self.echo(f"  {name}: {attempt.message}; retry {len(attempts)} ({retry.policy(strategy)})")
        if strategy is not None and attempts[-1].phase == "Succeeded":
            node.finish("Succeeded")
        if node.phase != "Succeeded":
            self.echo(f"  {name}: {node.message}; full log: {log}")
            return self._result(node, log=log, exit_code=attempts[-1].exit_code)
        outputs = template.get("outputs", {}).get("artifacts", [])
        artifacts = {a["name"]: pod.output(a["path"], f"output artifact {a['name']!r}") for a in outputs}
        artifacts = {k: v for k, v in artifacts.items() if v.exists()}  # an optional one not made is no output
        outputs = [a for a in outputs if a["name"] in artifacts]
        keys = {}
        if self.artifacts is not None:
            key_values = {**local_values, "pod.name": pod_name(self.run_id, attempts[-1].name, template["name"])}
            for artifact in outputs:
                keys[artifact["name"]] = self.artifacts.key(artifact, key_values, tmpl_where)
                self.artifacts.save(artifacts[artifact["name"]], keys[artifact["name"]])
        else:
            for artifact in outputs:  # an artifact with its own key: where key-only inputs find it
                key = (artifact.get("gcs") or {}).get("key")
                if key:
                    keys[artifact["name"]] = substitute(str(key), local_values, f"{tmpl_where}.outputs.artifacts."
                                                        f"{artifact['name']}.gcs.key")
                    self.objects.save(artifacts[artifact["name"]], keys[artifact["name"]])
        if cache is not None:  # operator.go: a succeeded memoized node's outputs are saved
            cache.save(key, node.name, {"parameters": [{"name": k, "value": v} for k, v in parameters.items()],
                                        "artifacts": [{"name": k, "path": str(v)} for k, v in artifacts.items()]})
        # executor.go CaptureScriptResult: stdout minus one trailing newline is outputs.result.
        result = stdout.removesuffix("\n") if stdout is not None else None
        return self._result(node, parameters=parameters, artifacts=artifacts, log=log, artifact_keys=keys,
                            result=result, exit_code=attempts[-1].exit_code)

    def _pod(self, template: dict, pod_dir: Path, sources: dict[str, Path], arguments: dict,
             values: dict[str, str | None], attempt: Node, log: Path, name: str, on_exit: bool, where: str
             ) -> tuple[dict[str, str | None], str | None, Any]:
        """One attempt's pod (pod.py): made, loaded and run, unless a deadline passed or it cannot
        be made (Error, as a pod Kubernetes or the init container refuses). Its outputs, stdout and
        file system."""
        if self._past_deadline and not on_exit:
            # workflowpod.go build: no pod past the workflow's deadline; the node then fails.
            attempt.finish("Failed", deadlines.WORKFLOW_DEADLINE)
            return {}, None, None
        try:
            seconds = deadlines.pod_seconds(template, values, where)
            if self._deadline is not None and not on_exit:
                left = (self._deadline - datetime.now(timezone.utc)).total_seconds()
                seconds = left if seconds is None else min(seconds, left)
            pod, container = pods.prepare(self, template, pod_dir, sources, arguments, values, where)
            argv, env, cwd = pods.command(self, container, values, pod, where)
            memory = pods.memory_limit(container, f"{where}.container")
            failed_load = pods.load_keyed(self, template, arguments, values, pod, where)
        except NodeError as exc:
            attempt.finish("Error", str(exc))
            return {}, None, None
        if failed_load:
            attempt.finish("Error", failed_load)
            return {}, None, pod
        parameters, stdout = pods.attempt(self, attempt, argv, env, cwd, log, name, template, pod, seconds, on_exit,
                                          memory)
        return parameters, stdout, pod

    def _memoized(self, template: dict, values: dict[str, str | None], where: str
                  ) -> tuple[memoize.Cache, str, dict[str, Any] | None]:
        """The template's cache, its key, and on a hit the cached outputs as TaskResult fields."""
        memo = template["memoize"]
        key = memoize.resolve_key(memo["key"], values, where)
        age = memoize.max_age(memo["maxAge"]) if memo.get("maxAge") else None
        cache = memoize.Cache(self.run_dir.parent, memo["cache"]["configMap"]["name"])
        outputs = cache.load(key, age)
        if outputs is None:
            return cache, key, None
        return cache, key, {"parameters": {p["name"]: p.get("value") for p in outputs.get("parameters", [])},
                            "artifacts": {a["name"]: Path(a["path"]) for a in outputs.get("artifacts", [])}}

    def _sleep(self, seconds: float, note: str) -> bool:
        """Wait out a retry backoff; False when the run was stopped meanwhile."""
        self.echo(note)
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        return not self._stopping

    def _input_artifacts(self, template: dict, arguments: dict, results: dict[str, TaskResult], level: Level,
                         task_dir: Path, values: dict[str, str | None], where: str) -> dict[str, Path]:
        """Each input artifact's source: its producer's file or folder (or its caller's), with
        --artifacts a download of the producer's key, raw data as its file; an argument's `subPath`
        taken inside it. A pod loads a copy of each (pod.py); a dag or steps template passes them on."""
        folders = {name: task_dir / "inputs" / name for name in keyed_inputs(template, arguments, where)}
        given = {a["name"]: a for a in arguments.get("artifacts", [])}
        for artifact in template.get("inputs", {}).get("artifacts", []):
            if "raw" in artifact and artifact["name"] not in given:
                folders[artifact["name"]] = task_dir / "inputs" / artifact["name"]
                folders[artifact["name"]].parent.mkdir(parents=True, exist_ok=True)
                folders[artifact["name"]].write_text(str(artifact["raw"].get("data", "")))
        for name, tag in input_artifact_sources(template, arguments, where).items():
            argument = given.get(name, {})
            sub = substitute(str(argument.get("subPath") or ""), values, f"{where}.arguments.artifacts.{name}.subPath")
            if tag is None:
                folders[name] = task_dir / "inputs" / name  # not supplied: nothing there
                continue
            if tag.startswith("inputs."):
                if tag.split(".")[2] not in level.inputs:
                    raise TemplateError(f"{where}: {{{{{tag}}}}} is not an input artifact of the template it is in")
                folders[name] = sub_path(level.inputs[tag.split(".")[2]], sub, name)
                continue
            _, producer, _, _, output = tag.split(".")
            done = results.get(producer)
            if done is None or output not in done.artifacts:
                if argument.get("optional"):
                    folders[name] = task_dir / "inputs" / name  # dag.go: an optional one not found is left out
                    continue
                # dag.go resolveDependencyReferences / steps.go resolveReferences: the task errors.
                raise NodeError(f"{where}: unable to resolve references: Unable to resolve: \"{tag}\"")
            if self.artifacts is None or output not in done.artifact_keys:
                folders[name] = sub_path(done.artifacts[output], sub, name)
            else:
                key = posixpath.join(done.artifact_keys[output], sub) if sub else done.artifact_keys[output]
                folders[name] = self.artifacts.load(key, task_dir / "inputs" / name)
        return folders

    def _run_nested(self, template: dict, node: Node, inputs: dict[str, str], folders: dict[str, Path],
                    folder: str, on_exit: bool) -> TaskResult:
        """A dag or steps template (dag.go executeDAG, steps.go executeSteps): its tasks or steps run
        under its node, seeing its own inputs; then its outputs are taken from what they made."""
        base = self._values({}, None)
        base.update({f"inputs.parameters.{k}": v for k, v in inputs.items()})
        base.update({f"inputs.artifacts.{k}.path": str(v) for k, v in folders.items()})
        level = Level(node, base, folders, f"{folder}/" if folder else "", on_exit=on_exit)
        results: dict[str, TaskResult] = {}
        if node is self.root:
            self._results = results  # what status.json lists
        if "dag" in template:
            phase = self._run_dag(template, results, level)
            scope = self._values(results, level)
        else:
            phase, message, scope, results = stepgroups.run(self, template, level)
            if message:
                node.message = message
        scope_artifacts = {f"{kind}.{name}.outputs.artifacts.{art}": path for kind in ("tasks", "steps")
                           for name, done in results.items() for art, path in done.artifacts.items()}
        parameters, artifacts = {}, {}
        if phase == "Succeeded":
            try:
                parameters, artifacts = nested_outputs(template, scope, scope_artifacts)
            except TemplateError as exc:
                # operator.go getTemplateOutputsFromScope: outputs that cannot be resolved are an error.
                node.finish("Error", str(exc))
                return TaskResult(node.display_name, "Error", node.seconds, message=str(exc), nested=results)
        node.finish(phase, node.message if phase != "Succeeded" else "")
        return TaskResult(node.display_name, node.phase, node.seconds, parameters=parameters, artifacts=artifacts,
                          message=node.message, nested=results)
