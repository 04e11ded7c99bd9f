"""What the local runner accepts, checked before anything runs: the fields it understands, the
ones it ignores (they only steer Kubernetes or the cluster's bookkeeping), what it refuses by name
because it needs a cluster, and what Argo's validation (workflow/validate/validate.go) rejects too."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from workflows.local import cluster_only, memoize, retry
from workflows.local import dag as dags
from workflows.local.templating import NotSupported, TemplateError

# Fields the local runner understands. Scheduling fields only matter to Kubernetes: ignored here.
TEMPLATE_FIELDS = {"name", "container", "script", "dag", "steps", "inputs", "outputs", "retryStrategy", "metadata",
                   "parallelism", "memoize", "failFast", "activeDeadlineSeconds", "timeout", "volumes"}
SCHEDULING_FIELDS = {"nodeSelector", "tolerations", "affinity", "podSpecPatch", "securityContext",
                     "serviceAccountName", "priorityClassName", "metrics", "archiveLocation"}
CONTAINER_FIELDS = {"image", "command", "args", "env", "resources", "imagePullPolicy", "securityContext",
                    "volumeMounts", "workingDir", "name"}
TASK_FIELDS = {"name", "template", "arguments", "depends", "dependencies", "when", "withItems", "withParam",
               "withSequence", "continueOn", "onExit", "hooks"}
SCRIPT_FIELDS = CONTAINER_FIELDS | {"source"}
# What needs a cluster (or a person, or a network service): refused by name.
CLUSTER_ONLY = {"resource": "it acts on Kubernetes objects", "suspend": "it waits for `argo resume`",
                "http": "it is run by the agent pod", "plugin": "it is run by an executor plugin",
                "data": "it reads an artifact repository", "containerSet": "its containers share a pod",
                "daemon": "a daemon is reached over the pod network", "sidecars": "sidecars share the pod's network",
                "initContainers": "init containers run in the pod", "steps": "", "dag": ""}
# Artifact stores other than the run's own (a `gcs` key is the run's bucket); Kubernetes' access modes.
OUTSIDE_STORES = {"s3", "oss", "azure", "hdfs", "artifactory", "http", "git", "raw", "plugin"}
ACCESS_MODES = {"ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"}
SPEC_FIELDS = {"entrypoint", "templates", "arguments", "onExit", "volumeClaimTemplates", "volumes",
               "activeDeadlineSeconds"}
# Fields of the workflow that steer Kubernetes, the cluster's bookkeeping or Prometheus: no step sees them.
SPEC_IGNORED = {"serviceAccountName", "podGC", "ttlStrategy", "artifactRepositoryRef", "nodeSelector",
                "tolerations", "securityContext", "podMetadata", "workflowMetadata", "parallelism", "imagePullSecrets",
                "podDisruptionBudget", "archiveLogs", "artifactGC", "priority", "podPriorityClassName", "hooks",
                "terminationGracePeriodSeconds", "metrics", "volumeClaimGC", "executor"}


def check_manifest(spec: dict, templates: dict[str, dict], entrypoints: Mapping[str, list[str]],
                   echo: Callable[[str], None]) -> None:
    """A refusal by name (NotSupported), or what Argo's validation rejects too (TemplateError)."""
    def refuse(where: str, keys: set[str], allowed: set[str]) -> None:
        unknown = sorted(keys - allowed)
        if unknown:
            raise NotSupported(f"{where}.{unknown[0]}: not supported by the local runner")

    refuse("spec", set(spec), SPEC_FIELDS | SPEC_IGNORED)
    if not isinstance(spec.get("activeDeadlineSeconds", 0), int):
        raise TemplateError(f"spec.activeDeadlineSeconds: expected a whole number of seconds, got "
                            f"{spec['activeDeadlineSeconds']!r}")
    if spec.get("hooks"):
        echo("note: lifecycle hooks do not run locally")
    if spec.get("onExit") and spec["onExit"] not in templates:
        raise TemplateError(f"spec.onExit: no template {spec['onExit']!r}")
    for i, template in enumerate(spec.get("templates", [])):
        where = f"spec.templates[{i}]"
        if not isinstance(template, dict) or not template.get("name"):
            raise TemplateError(f"{where}.name: a template needs a name")  # validate.go validateTemplate
        for key in sorted(set(template) & set(CLUSTER_ONLY)):
            if CLUSTER_ONLY[key]:
                raise NotSupported(f"{where}.{key}: not supported by the local runner ({CLUSTER_ONLY[key]})")
        refuse(where, set(template), TEMPLATE_FIELDS | SCHEDULING_FIELDS)
        if "container" in template or "script" in template:
            cluster_only.check(template, spec, where)
            for k, artifact in enumerate((template.get("outputs") or {}).get("artifacts") or []):
                store = sorted(set(artifact) & OUTSIDE_STORES)
                if store:
                    raise NotSupported(f"{where}.outputs.artifacts[{k}].{store[0]}: an artifact saved to an outside "
                                       "store is not supported by the local runner")
        if "container" in template:
            refuse(f"{where}.container", set(template["container"]), CONTAINER_FIELDS)
            _check_command(template["container"], entrypoints, f"{where}.container")
        if "script" in template:
            refuse(f"{where}.script", set(template["script"]), SCRIPT_FIELDS)
            _check_command(template["script"], entrypoints, f"{where}.script")
        for j, group in enumerate(template.get("steps") or []):
            for k, step in enumerate(group or []):
                _check_call(step, templates, f"{where}.steps[{j}][{k}]")
        if "retryStrategy" in template:
            retry.check_strategy(template["retryStrategy"], where)
        if "memoize" in template:
            memoize.check(template["memoize"], where)
        if "dag" in template:
            refuse(f"{where}.dag", set(template["dag"]), dags.DAG_FIELDS)
        tasks = template.get("dag", {}).get("tasks", [])
        names = {t.get("name") for t in tasks}
        by_name = {t.get("name"): t for t in tasks}
        for j, task in enumerate(tasks):
            _check_call(task, templates, f"{where}.dag.tasks[{j}]")
            for dep in dags.dependencies(task, f"{where}.dag.tasks[{j}]", by_name)[0]:
                if dep not in names:
                    raise TemplateError(f"{where}.dag.tasks[{j}]: depends on unknown task {dep!r}")
        target = template.get("dag", {}).get("target") or ""
        for name in ([] if "{{" in target else target.split()):  # a {{...}} target is known at run time
            if name not in names:
                raise TemplateError(f"{where}.dag.target: unknown task {name!r}")
    for i, claim in enumerate(spec.get("volumeClaimTemplates") or []):
        modes = set(((claim or {}).get("spec") or {}).get("accessModes") or []) - ACCESS_MODES
        if modes or not (claim.get("metadata") or {}).get("name"):
            # operator.go createPVCs: Kubernetes refuses the claim, the workflow errs ("pvc create error").
            raise TemplateError(f"spec.volumeClaimTemplates[{i}]: " + (
                f"unsupported access mode {sorted(modes)[0]!r}" if modes else "metadata.name is required"))
    entry = spec.get("entrypoint")
    if entry not in templates:
        raise TemplateError(f"spec.entrypoint: no template {entry!r}")

def _check_call(task: dict, templates: dict[str, dict], where: str) -> None:
    """A DAG task or a step: its fields, and the template it runs."""
    unknown = sorted(set(task) - TASK_FIELDS)
    if unknown:
        raise NotSupported(f"{where}.{unknown[0]}: not supported by the local runner")
    if task.get("template") not in templates:
        raise TemplateError(f"{where}.template: unknown template {task.get('template')!r}")
    callee = templates[task["template"]]
    given = {p.get("name") for p in (task.get("arguments") or {}).get("parameters") or []}
    for param in (callee.get("inputs") or {}).get("parameters") or []:
        if not {"value", "default", "valueFrom"} & set(param) and param.get("name") not in given:
            # validate.go (common.ProcessArgs): the workflow is rejected.
            raise TemplateError(f"{where}: templates.{callee['name']}.inputs.parameters.{param.get('name')} "
                                "was not supplied")
    hooks = task.get("hooks") or {}
    if set(hooks) - {"exit"} or any(set(h) - {"template", "arguments"} for h in hooks.values()):
        raise NotSupported(f"{where}.hooks: only an `exit` hook runs locally (lifecycle expressions do not)")
    for hook in [task.get("onExit"), (hooks.get("exit") or {}).get("template")]:
        if hook and hook not in templates:
            raise TemplateError(f"{where}: exit hook: unknown template {hook!r}")

def _check_command(container: dict, entrypoints: Mapping[str, list[str]], where: str) -> None:
    for key in ("command", "args"):
        for j, item in enumerate(container.get(key) or []):
            if not isinstance(item, str):
                # Kubernetes' decoder takes only strings here: the workflow is refused at submission.
                raise TemplateError(f"{where}.{key}[{j}]: expected a string, got {item!r}: quote it ('{item}')")
    if not container.get("command") and container.get("image") not in entrypoints:
        raise NotSupported(f"{where}.command: not given, so Argo runs the image's entrypoint, which does not "
                            f"exist on this machine (image {container.get('image')!r}): give the command")


def without_nulls(value: Any) -> Any:
    """The manifest without `key: null` entries, as Go decodes it."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def check_enums(values: Mapping[str, object], declared: Iterable[dict]) -> None:
    """validate/validate.go validateArgumentsValues: a value given for a parameter with an enum
    must be one of it (exactly: `TRUE` is not `true`)."""
    for param in declared:
        enum = param.get("enum")
        if enum is not None and param["name"] in values and str(values[param["name"]]) not in [str(e) for e in enum]:
            raise TemplateError(f"spec.arguments.parameters.{param['name']}.value should be present in "
                                f"spec.arguments.parameters.{param['name']}.enum list ({', '.join(map(str, enum))})")


def check_parameter_names(given: Mapping[str, object], declared: Iterable[str]) -> None:
    """Refuse a `-p NAME` the workflow does not declare, with the nearest declared name as a hint."""
    declared = list(declared)
    unknown = sorted(set(given) - set(declared))
    if unknown:
        near = difflib.get_close_matches(unknown[0], declared, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise TemplateError(f"-p {unknown[0]}: not a parameter of this workflow{hint} (known: {', '.join(declared)})")
