"""What a template of each type may hold: validate.go's `validateLeaf`, `validateNonLeaf`,
`validateInputs`, `validateTemplate` (timeout, podResources, resourceClaims) and
`validateArtifactLocation`, with ContainerSetTemplate.Validate.
"""

from __future__ import annotations

from typing import Any

import yaml

from workflows.lint.findings import Finding, excerpt, item_path, key_path
from workflows.lint.model import Manifest, template_kind
from workflows.lint.outputs import artifact_path
from workflows.lint.variables import LEAF_KINDS, POD_KINDS, TAG
from workflows.lint.walk import all_templates, as_list, names

RESOURCE_ACTIONS = ("get", "create", "apply", "delete", "replace", "patch")
_RESERVED = ("wait", "supervisor")  # common.IsArgoSidecar, with the artifact-plugin- prefix
_POD_RESOURCES = ("cpu", "memory")


def check_leaves(m: Manifest) -> list[Finding]:
    findings: list[Finding] = []
    defaults = m.spec.get("templateDefaults") if isinstance(m.spec.get("templateDefaults"), dict) else {}
    for path, template in all_templates(m.spec, m.spec_path):
        kind = template_kind(template)
        findings += _inputs(template, path, kind in LEAF_KINDS)
        findings += _timeouts(template, path, kind)
        findings += pod_resources(template.get("podResources"), key_path(path, "podResources"), kind)
        if as_list(template.get("resourceClaims")) and kind not in POD_KINDS and kind:
            findings.append(Finding(key_path(path, "resourceClaims"),
                                    f"a {kind} template runs no pod to claim resources for"))
        if kind in ("steps", "dag"):
            if template.get("activeDeadlineSeconds") is not None:
                findings.append(Finding(key_path(path, "activeDeadlineSeconds"),
                                        "only leaf templates (container, script, ...) take activeDeadlineSeconds"))
            continue
        if kind in ("container", "script"):
            findings += _image(template, path, kind, defaults, m.kind)
        if kind == "container":
            findings += _mounts(template, path)
        if kind == "containerSet":
            findings += _container_set(template, key_path(path, "containerSet"))
        for index, sidecar in enumerate(as_list(template.get("sidecars"))):
            if isinstance(sidecar, dict) and _reserved(sidecar.get("name")):
                findings.append(Finding(item_path(key_path(path, "sidecars"), index, sidecar),
                                        f"{sidecar['name']!r} is a container name Argo reserves"))
        if kind == "resource" and isinstance(template.get("resource"), dict):
            findings += _resource(template, key_path(path, "resource"))
        findings += _deadline(template.get("activeDeadlineSeconds"), key_path(path, "activeDeadlineSeconds"))
        if template.get("parallelism") is not None and kind:
            findings.append(Finding(key_path(path, "parallelism"),
                                    "parallelism is only valid for steps and DAG templates"))
        archive = template.get("archiveLocation")
        if isinstance(archive, dict):
            findings += artifact_location(archive, key_path(path, "archiveLocation"))
    return findings


def _inputs(template: dict[str, Any], path: str, leaf: bool) -> list[Finding]:
    inputs = template.get("inputs") if isinstance(template.get("inputs"), dict) else {}
    findings: list[Finding] = []
    list_path = key_path(key_path(path, "inputs"), "artifacts")
    for index, artifact in enumerate(as_list(inputs.get("artifacts"))):
        if not isinstance(artifact, dict):
            continue
        where = item_path(list_path, index, artifact)
        findings += artifact_path(artifact, where, leaf)
        if artifact.get("from"):
            findings.append(Finding(key_path(where, "from"), "`from` is for arguments, not inputs"))
        findings += artifact_location(artifact, where)
    return findings


def artifact_location(location: dict[str, Any], path: str) -> list[Finding]:
    """validateArtifactLocation: a git repo, and hdfs's addresses, path and user."""
    findings: list[Finding] = []
    git = location.get("git")
    if isinstance(git, dict) and not git.get("repo"):
        findings.append(Finding(key_path(path, "git"), "git.repo is required"))
    hdfs = location.get("hdfs")
    if isinstance(hdfs, dict):
        where = key_path(path, "hdfs")
        if not as_list(hdfs.get("addresses")):
            findings.append(Finding(where, "hdfs.addresses is required"))
        elif not hdfs.get("path"):
            findings.append(Finding(where, "hdfs.path is required"))
        elif not str(hdfs["path"]).startswith("/"):
            findings.append(Finding(where, "hdfs.path must be absolute"))
        elif not hdfs.get("hdfsUser") and not hdfs.get("krbCCacheSecret") and not hdfs.get("krbKeytabSecret"):
            findings.append(Finding(where, "hdfs needs hdfsUser, krbCCacheSecret or krbKeytabSecret"))
    return findings


def _timeouts(template: dict[str, Any], path: str, kind: str) -> list[Finding]:
    findings: list[Finding] = []
    timeout = template.get("timeout")
    if timeout not in (None, ""):
        if kind not in LEAF_KINDS and kind:
            findings.append(Finding(key_path(path, "timeout"), f"a {kind} template does not take timeout"))
        elif str(timeout).lstrip("-").isdigit():
            findings.append(Finding(key_path(path, "timeout"),
                                    f"{excerpt(str(timeout))!r} needs a unit, e.g. 30s or 5m"))
    if template.get("pendingTimeout") not in (None, "") and kind not in LEAF_KINDS and kind:
        findings.append(Finding(key_path(path, "pendingTimeout"), f"a {kind} template does not take pendingTimeout"))
    return findings


def pod_resources(resources: Any, path: str, kind: str = "") -> list[Finding]:
    """validatePodResources: pod-level resources are cpu, memory and hugepages-* only."""
    if not isinstance(resources, dict):
        return []
    if kind in ("http", "plugin"):
        return [Finding(path, f"a {kind} template runs on the shared agent pod: podResources cannot apply")]
    if resources.get("claims"):
        return [Finding(key_path(path, "claims"), "claims are not supported for pod-level resources")]
    findings: list[Finding] = []
    for section in ("limits", "requests"):
        for name in resources.get(section) or {} if isinstance(resources.get(section), dict) else {}:
            if name not in _POD_RESOURCES and not str(name).startswith("hugepages-"):
                findings.append(Finding(key_path(key_path(path, section), name),
                                        "pod-level resources are cpu, memory and hugepages-* only"))
    return findings


def _image(
    template: dict[str, Any], path: str, kind: str, defaults: dict[str, Any], manifest_kind: str
) -> list[Finding]:
    body = template.get(kind)
    if not isinstance(body, dict) or body.get("image"):
        return []  # not a mapping: the schema check says so
    default = defaults.get(kind) if isinstance(defaults.get(kind), dict) else {}
    if default.get("image") and manifest_kind != "ClusterWorkflowTemplate":
        return []
    return [Finding(key_path(key_path(path, kind), "image"),
                    "an image is required (or templateDefaults." + kind + ".image)")]


def _mounts(template: dict[str, Any], path: str) -> list[Finding]:
    """A mount path used twice, or an input artifact unpacked where a volume is mounted."""
    container = template.get("container") if isinstance(template.get("container"), dict) else {}
    used: dict[str, str] = {}
    findings: list[Finding] = []
    mounts_path = key_path(key_path(path, "container"), "volumeMounts")
    for index, mount in enumerate(as_list(container.get("volumeMounts"))):
        if not isinstance(mount, dict):
            continue
        where = key_path(item_path(mounts_path, index, mount), "mountPath")
        mount_path = str(mount.get("mountPath", ""))
        if mount_path in used:
            findings.append(Finding(where, f"{excerpt(mount_path)!r} is already mounted by {used[mount_path]}"))
        used[mount_path] = f"volume {mount.get('name')!r}"
    inputs = template.get("inputs") if isinstance(template.get("inputs"), dict) else {}
    artifacts_path = key_path(key_path(path, "inputs"), "artifacts")
    for index, artifact in enumerate(as_list(inputs.get("artifacts"))):
        if isinstance(artifact, dict) and artifact.get("path") is not None:
            artifact_path_ = str(artifact.get("path"))
            if artifact_path_ in used:
                where = key_path(item_path(artifacts_path, index, artifact), "path")
                findings.append(Finding(where,
                                        f"{excerpt(artifact_path_)!r} is already mounted by {used[artifact_path_]}"))
            used[artifact_path_] = f"input artifact {artifact.get('name')!r}"
    return findings


def _container_set(template: dict[str, Any], path: str) -> list[Finding]:
    body = template.get("containerSet") if isinstance(template.get("containerSet"), dict) else {}
    containers = [c for c in as_list(body.get("containers")) if isinstance(c, dict)]
    containers_path = key_path(path, "containers")
    if not containers:
        return [Finding(containers_path, "a containerSet needs at least one container")]
    findings: list[Finding] = []
    used: dict[str, str] = {}
    for index, mount in enumerate(as_list(body.get("volumeMounts"))):
        if isinstance(mount, dict):
            mount_path = str(mount.get("mountPath", ""))
            if mount_path in used:
                where = key_path(item_path(key_path(path, "volumeMounts"), index, mount), "mountPath")
                findings.append(Finding(where, f"{excerpt(mount_path)!r} is already mounted by {used[mount_path]}"))
            used[mount_path] = f"volume {mount.get('name')!r}"
    declared = names(containers)
    graph: dict[str, list[str]] = {}
    for index, container in enumerate(containers):
        where = item_path(containers_path, index, container)
        if _reserved(container.get("name")):
            findings.append(Finding(where, f"{container['name']!r} is a container name Argo reserves"))
        deps = [d for d in as_list(container.get("dependencies")) if isinstance(d, str)]
        for dep in deps:
            if dep not in declared:
                findings.append(Finding(key_path(where, "dependencies"),
                                        f"container {excerpt(dep)!r} is not in this containerSet"))
        graph[str(container.get("name"))] = [d for d in deps if d in declared]
    if _has_cycle(graph):
        findings.append(Finding(containers_path, "the containers' dependencies form a cycle"))
    inputs = template.get("inputs") if isinstance(template.get("inputs"), dict) else {}
    outputs = template.get("outputs") if isinstance(template.get("outputs"), dict) else {}
    uses_io = any(as_list(block.get(kind)) for block, kind in
                  ((inputs, "artifacts"), (outputs, "parameters"), (outputs, "artifacts")))
    if uses_io and "main" not in declared:
        findings.append(Finding(containers_path,
                                "a containerSet with input artifacts or outputs needs a container named 'main'"))
    return findings


def _has_cycle(graph: dict[str, list[str]]) -> bool:
    state: dict[str, int] = {}
    for start in graph:
        if start in state:
            continue
        stack = [(start, iter(graph[start]))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                return True
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(graph.get(child, []))))
    return False


def _reserved(name: Any) -> bool:
    return isinstance(name, str) and (name in _RESERVED or name.startswith("artifact-plugin-"))


def _resource(template: dict[str, Any], path: str) -> list[Finding]:
    resource = template["resource"]
    action = resource.get("action")
    findings: list[Finding] = []
    if isinstance(action, str) and not TAG.search(action) and action not in RESOURCE_ACTIONS:
        findings.append(Finding(key_path(path, "action"),
                                f"{excerpt(action)!r} is not one of {', '.join(RESOURCE_ACTIONS)}"))
    if action in ("delete", "get"):
        return findings
    manifest, manifest_from = resource.get("manifest"), resource.get("manifestFrom")
    if not manifest and manifest_from is None:
        findings.append(Finding(path, "needs a manifest or manifestFrom"))
    elif manifest and manifest_from is not None:
        findings.append(Finding(path, "use either manifest or manifestFrom, not both"))
    if isinstance(manifest_from, dict) and isinstance(manifest_from.get("artifact"), dict):
        wanted = manifest_from["artifact"].get("name")
        inputs = template.get("inputs") if isinstance(template.get("inputs"), dict) else {}
        if wanted not in names(inputs.get("artifacts")):
            findings.append(Finding(key_path(key_path(path, "manifestFrom"), "artifact"),
                                    f"no input artifact {excerpt(str(wanted))!r}"))
    if isinstance(manifest, str) and manifest:
        try:  # Argo substitutes every tag with a placeholder first (ProcessArgs, SubstituteResourceManifestExpressions)
            yaml.safe_load(TAG.sub("placeholder", manifest))
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" (line {mark.line + 1} of the manifest)" if mark else ""
            findings.append(Finding(key_path(path, "manifest"), f"is not valid YAML{where}"))
    return findings


def _deadline(value: Any, path: str) -> list[Finding]:
    """IsValidIntOrArgoVariable and not negative."""
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [Finding(path, "must be a positive integer or an argo variable")] if value < 0 else []
    text = str(value)
    if text.startswith("{{") and text.endswith("}}"):
        return []
    try:
        number = int(text)
    except ValueError:
        return [Finding(path, f"{excerpt(text)!r} must be a positive integer or an argo variable")]
    return [Finding(path, "must be a positive integer or an argo variable")] if number < 0 else []
