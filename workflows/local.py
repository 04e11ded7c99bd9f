"""Run a rendered WorkflowTemplate's DAG on this machine: `trainyard run --local`.

Not a second engine: it runs what Argo would run (each container template's command line as a
subprocess), with artifacts as folders and output parameters read from files. It supports what
trainyard's templates use and refuses anything else with a message naming the field.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from workflows.templating import TemplateError, evaluate_when, parse_depends, retry_allowed, substitute

# Fields the local runner understands. Scheduling fields only matter to Kubernetes: ignored here.
TEMPLATE_FIELDS = {"name", "container", "dag", "inputs", "outputs", "retryStrategy", "metadata"}
SCHEDULING_FIELDS = {"nodeSelector", "tolerations", "affinity", "activeDeadlineSeconds", "podSpecPatch",
                     "securityContext", "serviceAccountName", "priorityClassName", "timeout", "volumes"}
CONTAINER_FIELDS = {"image", "command", "args", "env", "resources", "imagePullPolicy", "securityContext",
                    "volumeMounts", "workingDir", "name"}
TASK_FIELDS = {"name", "template", "arguments", "depends", "dependencies", "when"}
SPEC_FIELDS = {"entrypoint", "templates", "arguments", "onExit"}
SPEC_IGNORED = {"serviceAccountName", "podGC", "ttlStrategy", "artifactRepositoryRef", "nodeSelector",
                "tolerations", "volumes", "securityContext", "podMetadata", "workflowMetadata",
                "activeDeadlineSeconds", "parallelism", "imagePullSecrets", "podDisruptionBudget",
                "archiveLogs", "artifactGC", "priority", "podPriorityClassName", "hooks"}


@dataclass
class TaskResult:
    name: str
    status: str  # Succeeded | Failed | Skipped
    seconds: float = 0.0
    parameters: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    log: Path | None = None


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    tasks: dict[str, TaskResult]

    @property
    def succeeded(self) -> bool:
        return all(t.status in ("Succeeded", "Skipped") for t in self.tasks.values())


class LocalRunner:
    def __init__(
        self,
        manifest: dict[str, Any],
        run_dir: Path,
        parameters: dict[str, str],
        secrets: dict[tuple[str, str], str] | None = None,
        echo: Callable[[str], None] = print,
        cwd: Path | None = None,
    ):
        self.manifest = manifest
        self.spec = manifest.get("spec", {})
        self.run_dir = run_dir
        self.run_id = run_dir.name
        self.secrets = secrets or {}
        self.echo = echo
        self.cwd = cwd or Path.cwd()
        self.templates = {t["name"]: t for t in self.spec.get("templates", [])}
        self.check_supported()
        self.parameters = self._workflow_parameters(parameters)

    # -- validation ---------------------------------------------------------------------------
    def check_supported(self) -> None:
        def refuse(where: str, keys: set[str], allowed: set[str]) -> None:
            unknown = sorted(keys - allowed)
            if unknown:
                raise TemplateError(f"{where}.{unknown[0]}: not supported by the local runner")

        refuse("spec", set(self.spec), SPEC_FIELDS | SPEC_IGNORED)
        if self.spec.get("hooks"):
            self.echo("note: lifecycle hooks do not run locally")
        if self.spec.get("onExit") and "container" not in self.templates.get(self.spec["onExit"], {}):
            raise TemplateError(f"spec.onExit: {self.spec['onExit']!r} must name a container template")
        for i, template in enumerate(self.spec.get("templates", [])):
            where = f"spec.templates[{i}]"
            refuse(where, set(template), TEMPLATE_FIELDS | SCHEDULING_FIELDS)
            if "container" in template:
                refuse(f"{where}.container", set(template["container"]), CONTAINER_FIELDS)
            for j, task in enumerate(template.get("dag", {}).get("tasks", [])):
                refuse(f"{where}.dag.tasks[{j}]", set(task), TASK_FIELDS)
                if task.get("template") not in self.templates:
                    raise TemplateError(f"{where}.dag.tasks[{j}].template: unknown template {task.get('template')!r}")
        entry = self.spec.get("entrypoint")
        if entry not in self.templates or "dag" not in self.templates[entry]:
            raise TemplateError(f"spec.entrypoint: {entry!r} must name a dag template")

    def _workflow_parameters(self, given: dict[str, str]) -> dict[str, str]:
        declared = {p["name"]: p.get("value") for p in self.spec.get("arguments", {}).get("parameters", [])}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise TemplateError(f"-p {unknown[0]}: not a parameter of this workflow (known: {', '.join(declared)})")
        values = {**declared, **given}
        missing = [name for name, value in values.items() if value is None]
        if missing:
            raise TemplateError(f"workflow parameter {missing[0]!r} has no default: pass -p {missing[0]}=VALUE")
        return {name: str(value) for name, value in values.items()}

    # -- execution ----------------------------------------------------------------------------
    def run(self) -> RunResult:
        dag = self.templates[self.spec["entrypoint"]]["dag"]
        tasks = {t["name"]: t for t in dag["tasks"]}
        order = self._order(tasks)
        results: dict[str, TaskResult] = {}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._started = datetime.now(timezone.utc)
        for index, name in enumerate(order, start=1):
            self.echo(f"[{index}/{len(order)}] {name}")
            result = self._run_task(tasks[name], results)
            results[name] = result
            mark = {"Succeeded": "done", "Skipped": "skipped", "Failed": "FAILED"}[result.status]
            self.echo(f"[{index}/{len(order)}] {name} {mark} in {result.seconds:.1f}s")
            if result.status == "Failed":
                break
        if self.spec.get("onExit"):
            results.update(self._run_exit_handler(self.spec["onExit"], results))
        return RunResult(self.run_id, self.run_dir, results)

    def _run_exit_handler(self, name: str, results: dict[str, TaskResult]) -> dict[str, TaskResult]:
        """Like Argo: after the DAG, whatever its outcome, with the workflow's status variables."""
        failed = [{"displayName": n, "templateName": n, "phase": "Failed", "message": f"exit code != 0 (log: {r.log})"}
                  for n, r in results.items() if r.status == "Failed"]
        self._exit_values = {
            "workflow.status": "Failed" if failed else "Succeeded",
            "workflow.failures": json.dumps(failed) if failed else "null",
            "workflow.creationTimestamp": self._started.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "workflow.duration": f"{(datetime.now(timezone.utc) - self._started).total_seconds():.1f}",
        }
        self.echo(f"[exit] {name}")
        result = self._run_task({"name": name, "template": name}, results)
        self.echo(f"[exit] {name} {'done' if result.status == 'Succeeded' else 'FAILED'} in {result.seconds:.1f}s")
        return {name: result}

    def _order(self, tasks: dict[str, dict]) -> list[str]:
        graph = {}
        for name, task in tasks.items():
            where = f"dag task {name!r}"
            deps = parse_depends(task["depends"], where) if task.get("depends") else list(task.get("dependencies", []))
            for dep in deps:
                if dep not in tasks:
                    raise TemplateError(f"{where}: depends on unknown task {dep!r}")
            graph[name] = deps
        try:
            return list(TopologicalSorter(graph).static_order())
        except CycleError as exc:
            raise TemplateError(f"dag tasks form a cycle: {' -> '.join(exc.args[1])}") from None

    def _values(self, results: dict[str, TaskResult]) -> dict[str, str]:
        values = {f"workflow.parameters.{k}": v for k, v in self.parameters.items()}
        values["workflow.name"] = self.run_id
        values["workflow.namespace"] = "local"
        values.update(getattr(self, "_exit_values", {}))
        for task, result in results.items():
            for param, value in result.parameters.items():
                values[f"tasks.{task}.outputs.parameters.{param}"] = value
            values[f"tasks.{task}.status"] = result.status
        return values

    def _run_task(self, task: dict, results: dict[str, TaskResult]) -> TaskResult:
        name = task["name"]
        where = f"dag task {name!r}"
        values = self._values(results)
        if "when" in task and not evaluate_when(substitute(task["when"], values, f"{where}.when"), where):
            return TaskResult(name, "Skipped")
        template = self.templates[task["template"]]
        if "container" not in template:
            raise TemplateError(f"template {template['name']!r}: only container templates run locally")
        task_dir = self.run_dir / name
        task_dir.mkdir(parents=True, exist_ok=True)
        arguments = task.get("arguments", {})
        inputs = self._input_parameters(template, arguments, values, where)
        paths = self._path_map(template, arguments, results, task_dir, where)
        local_values = {**values, **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        container = template["container"]
        tmpl_where = f"template {template['name']!r}"
        argv = [substitute(a, local_values, f"{tmpl_where}.container") for a in [*container.get("command", []), *container.get("args", [])]]
        argv = [_map_path(a, paths) for a in argv]
        if argv and argv[0] in ("python", "python3"):
            argv[0] = sys.executable  # the interpreter (and venv) trainyard runs in
        env = self._env(container, local_values, tmpl_where)
        attempts = 1 + int(str(template.get("retryStrategy", {}).get("limit", 0)))
        log = task_dir / "log.txt"
        started = time.monotonic()
        retry_when = template.get("retryStrategy", {}).get("expression")
        for attempt in range(1, attempts + 1):
            code = self._execute(argv, env, log, name)
            if code == 0 or (retry_when and not retry_allowed(retry_when, code, tmpl_where)):
                break
            if attempt < attempts:
                self.echo(f"  {name} exited {code}; retry {attempt}/{attempts - 1}")
        seconds = time.monotonic() - started
        if code != 0:
            self.echo(f"  {name} exited {code}; full log: {log}")
            return TaskResult(name, "Failed", seconds, log=log)
        outputs = template.get("outputs", {})
        parameters = {}
        for param in outputs.get("parameters", []):
            path = _map_path(param["valueFrom"]["path"], paths)
            if not Path(path).is_file():
                raise TemplateError(f"{tmpl_where}: output parameter {param['name']!r} was not written to {path}")
            parameters[param["name"]] = Path(path).read_text().strip()
        artifacts = {a["name"]: Path(_map_path(a["path"], paths)) for a in outputs.get("artifacts", [])}
        return TaskResult(name, "Succeeded", seconds, parameters, artifacts, log)

    def _input_parameters(self, template: dict, arguments: dict, values: dict[str, str], where: str) -> dict[str, str]:
        given = {p["name"]: substitute(str(p.get("value", "")), values, f"{where}.arguments") for p in arguments.get("parameters", [])}
        resolved = {}
        for param in template.get("inputs", {}).get("parameters", []):
            if param["name"] in given:
                resolved[param["name"]] = given[param["name"]]
            elif "value" in param or "default" in param:
                resolved[param["name"]] = str(param.get("value", param.get("default")))
            else:
                raise TemplateError(f"{where}: input parameter {param['name']!r} of template {template['name']!r} is not given")
        return resolved

    def _path_map(self, template: dict, arguments: dict, results: dict[str, TaskResult], task_dir: Path, where: str) -> dict[str, str]:
        """Container paths -> local paths: outputs under the task's folder, inputs at their producer's."""
        paths: dict[str, str] = {}
        for artifact in template.get("outputs", {}).get("artifacts", []):
            local = task_dir / artifact["name"]
            local.mkdir(parents=True, exist_ok=True)
            paths[artifact["path"]] = str(local)
        for param in template.get("outputs", {}).get("parameters", []):
            if "path" not in param.get("valueFrom", {}):
                raise TemplateError(f"{where}: output parameter {param['name']!r}: only valueFrom.path is supported locally")
            paths[param["valueFrom"]["path"]] = str(task_dir / "outputs" / param["name"])
        sources = {a["name"]: a.get("from", "") for a in arguments.get("artifacts", [])}
        for artifact in template.get("inputs", {}).get("artifacts", []):
            ref = sources.get(artifact["name"], "")
            parts = ref.strip("{} ").split(".")
            if len(parts) != 5 or parts[0] != "tasks" or parts[2:4] != ["outputs", "artifacts"]:
                raise TemplateError(f"{where}: input artifact {artifact['name']!r} needs from: '{{{{tasks.T.outputs.artifacts.A}}}}'")
            producer, output = parts[1], parts[4]
            if producer not in results or output not in results[producer].artifacts:
                raise TemplateError(f"{where}: artifact {ref} was not produced")
            paths[artifact["path"]] = str(results[producer].artifacts[output])
        return paths

    def _env(self, container: dict, values: dict[str, str], where: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.cwd), env.get("PYTHONPATH", "")]))
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = substitute(str(var["value"]), values, f"{where}.env.{var['name']}")
                continue
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                raise TemplateError(f"{where}.env.{var['name']}: only value and secretKeyRef are supported locally")
            key = (ref["name"], ref["key"])
            if key in self.secrets:
                env[var["name"]] = self.secrets[key]
            elif not ref.get("optional"):
                raise TemplateError(f"{where}.env.{var['name']}: no local value for secret {ref['name']}/{ref['key']}")
        return env

    def _execute(self, argv: list[str], env: dict[str, str], log: Path, name: str) -> int:
        """Run one attempt, streaming its output with the task name in front, and keep a log file."""
        tail: deque[str] = deque(maxlen=1)
        with log.open("a") as log_file:
            log_file.write(f"$ {' '.join(argv)}\n")
            process = subprocess.Popen(argv, cwd=self.cwd, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True, bufsize=1)
            assert process.stdout is not None
            for line in process.stdout:
                log_file.write(line)
                tail.append(line)
                # Steps name themselves ("train: ...", for Argo's logs): don't say it twice.
                self.echo(f"  {name} | {line.rstrip().removeprefix(f'{name}: ')}")
            return process.wait()


def _map_path(value: str, paths: dict[str, str]) -> str:
    """Rewrite a container path (or anything under it) to its local counterpart."""
    for container_path in sorted(paths, key=len, reverse=True):
        if value == container_path or value.startswith(container_path.rstrip("/") + "/"):
            return paths[container_path] + value[len(container_path):]
    return value
