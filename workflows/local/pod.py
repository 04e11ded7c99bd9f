"""One pod of a container or script template, as Argo runs it: its own file system (volumes,
input artifacts, the script's source), the main container's command run in it, and what the wait
container saves afterwards. Each attempt of a retried template is a new pod, as on the cluster."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workflows.local import inputs
from workflows.local.deadlines import POD_DEADLINE, WORKFLOW_DEADLINE
from workflows.local.nodes import Node
from workflows.local.podfs import PodFS
from workflows.local.process import Process
from workflows.local.script import pod_container
from workflows.local.template_io import environment, keyed_inputs, missing_artifacts, output_parameters
from workflows.local.templating import NotSupported, TemplateError, substitute
from workflows.local.volumes import mount_volumes

if TYPE_CHECKING:
    from workflows.local.runner import LocalRunner

STOP_MESSAGE = "workflow shutdown with strategy:  Stop"  # controller/exec_control.go (two spaces)
_MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def folder(task_dir: Path, attempt: int) -> Path:
    """Where an attempt's pod keeps its files: the task's folder, `retry-N` for a retry."""
    return task_dir if attempt == 0 else task_dir / f"retry-{attempt}"


def prepare(runner: LocalRunner, template: dict, pod_dir: Path, sources: dict[str, Path], arguments: dict,
            values: dict[str, str | None], where: str) -> tuple[PodFS, dict]:
    """The pod's file system and its main container, its input artifacts loaded (init container)."""
    shutil.rmtree(pod_dir / "fs", ignore_errors=True)  # a pod starts from its image, not from leftovers
    shutil.rmtree(pod_dir / "volumes", ignore_errors=True)
    spec_container = template.get("container") or template.get("script") or {}
    pod = PodFS(pod_dir / "fs", runner.shared_paths, where=where, image=runner.images.get(spec_container.get("image"))).make()
    mount_volumes(spec_container, template, runner.spec, pod, pod_dir, runner.run_dir, f"{where}.container", values)
    for param in template.get("outputs", {}).get("parameters", []):
        if "path" not in (param.get("valueFrom") or {}):
            raise NotSupported(f"{where}: output parameter {param['name']!r}: only valueFrom.path is supported locally")
    container = pod_container(template, pod_dir, pod, values)
    keyed = keyed_inputs(template, arguments, where)
    declared = {a["name"]: a for a in template.get("inputs", {}).get("artifacts", [])}
    for name, source in sources.items():
        if name in keyed or name not in declared:
            continue
        target = pod.place(declared[name]["path"])
        inputs.load(name, source, target, optional=bool(declared[name].get("optional")))
    return pod, container


def load_keyed(runner: LocalRunner, template: dict, arguments: dict, values: dict[str, str | None], pod: PodFS,
               where: str) -> str:
    """Each key-only input, loaded as Argo's init container loads it (executor.go loadArtifact); the
    message of an init container that fails, or ""."""
    for name, artifact in keyed_inputs(template, arguments, where).items():
        key = substitute(str(artifact["gcs"]["key"]), values, f"{where}.inputs.artifacts.{name}.gcs.key")
        target = pod.place(artifact["path"])
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        store = runner.artifacts if runner.artifacts is not None else runner.objects
        if not store.load_prefix(key, target) and not artifact.get("optional"):
            # operator.go inferFailedReason: an init container's failure makes the node Error.
            return f"init: Error (exit code 1): artifact {name} failed to load: no results for key: {key}"
    return ""


def command(runner: LocalRunner, container: dict, values: dict[str, str | None], pod: PodFS, where: str
            ) -> tuple[list[str], dict[str, str], Path]:
    """The main container's argv, environment and working directory on this machine."""
    given = [*(container.get("command") or []), *container.get("args", [])]
    argv = [pod.rewrite(substitute(a, values, f"{where}.container")) for a in given]
    if not container.get("command"):
        argv = [*runner.entrypoints[container["image"]], *argv]  # this machine's command: not rewritten
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable  # the interpreter (and venv) trainyard runs in
    workdir = container.get("workingDir") or runner.workdir
    if workdir:
        cwd = pod.place(substitute(str(workdir), values, f"{where}.container.workingDir"))
        cwd.mkdir(parents=True, exist_ok=True)  # the container runtime makes its working directory
    else:
        cwd = runner.cwd
    return argv, environment(container, values, runner.secrets, runner.cwd, where, pod), cwd


def memory_limit(container: dict, where: str) -> int | None:
    """`resources.limits.memory` in bytes (Kubernetes quantities: 5M, 512Mi, 1.5Gi, 1e9)."""
    text = str(((container.get("resources") or {}).get("limits") or {}).get("memory") or "").strip()
    if not text:
        return None
    import re

    match = re.fullmatch(r"(\d+(?:\.\d+)?)(?:[eE](\d+))?([kMGTPE]i?)?", text)
    if not match or (match.group(3) or "") not in _MEMORY_UNITS:
        raise TemplateError(f"{where}.resources.limits.memory: {text!r} is not a Kubernetes quantity")
    number = float(match.group(1)) * 10 ** int(match.group(2) or 0)
    return int(number * _MEMORY_UNITS[match.group(3) or ""])


def attempt(runner: LocalRunner, node: Node, argv: list[str], env: dict[str, str], cwd: Path, log: Path,
            name: str, template: dict, pod: PodFS, deadline: float | None, on_exit: bool,
            memory: int | None) -> tuple[dict[str, str | None], str | None]:
    """Run the pod's main container: its exit decides Failed (controller/operator.go
    inferFailedReason: `main: Error (exit code N)`), a deadline or the memory limit ends it as the
    kubelet would; outputs that cannot be saved make it Error (the wait container)."""
    process = Process()
    try:
        with runner._lock:
            runner._processes[process] = on_exit
        try:
            # Steps name themselves ("train: ...", for Argo's logs): don't say it twice. A fan-out
            # child is `train(0:<its item>)`: its index is enough on every line (the item, a
            # sweep branch's overrides, was printed when it started).
            label = name.split(":", 1)[0] + ")" if "(" in name and ":" in name else name
            step = name.split("(", 1)[0]
            code = process.run(argv, cwd, env, log, lambda line: runner.echo(f"  {label} | {line.removeprefix(f'{step}: ')}"),
                               deadline=deadline, memory=memory)
        finally:
            with runner._lock:
                runner._processes.pop(process, None)
    except OSError as exc:
        # cmd/argoexec/commands/emissary.go: a command that cannot start leaves the main container's
        # default exit code 64, so the node is Failed like any other exit.
        node.exit_code = "64"
        reason = f'exec: "{argv[0]}": executable file not found in $PATH' if isinstance(exc, FileNotFoundError) else exc
        node.finish("Failed", f"main: Error (exit code 64): failed to find name in PATH: {reason}")
        return {}, None
    node.exit_code = str(code)
    ended = {"deadline": POD_DEADLINE, "workflow-deadline": WORKFLOW_DEADLINE,
             "oom": "main: OOMKilled (exit code 137)"}
    if process.reason in ended:
        node.exit_code = "137" if process.reason == "oom" else node.exit_code
        node.finish("Failed", ended[process.reason])
        return {}, process.stdout
    if process.reason == "stop" and code != 0:
        node.finish("Failed", STOP_MESSAGE)
        return {}, process.stdout
    if code != 0:
        node.finish("Failed", f"main: Error (exit code {code})")
        return {}, process.stdout
    try:
        parameters = output_parameters(template, pod)
        missing_artifacts(template, pod)
    except NotSupported:
        raise
    except TemplateError as exc:
        node.finish("Error", str(exc))
        return {}, process.stdout
    node.finish("Succeeded")
    return parameters, process.stdout
