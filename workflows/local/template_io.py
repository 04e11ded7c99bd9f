"""A container template's inputs and outputs on this machine: parameters resolved as Argo resolves
them, container paths mapped to folders of the run, environment and secrets."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from workflows.local.podfs import PROGRESS_FILE, PodFS
from workflows.local.templating import AbsentOptionalError, NotSupported, TemplateError, substitute


def output_parameters(template: dict, pod: PodFS) -> dict[str, str | None]:
    """executor/executor.go SaveParameters: the file's content, or valueFrom.default when it
    cannot be read, minus exactly one trailing newline."""
    parameters: dict[str, str | None] = {}
    for param in template.get("outputs", {}).get("parameters", []):
        source = param["valueFrom"]["path"]
        path = pod.output(source, f"output parameter {param['name']!r}")
        try:
            value = path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            if "default" not in param["valueFrom"]:
                raise TemplateError(f"wait: output parameter {param['name']!r}: open {source}: no such file "
                                    f"(locally {path})") from None
            value = str(param["valueFrom"]["default"])
        parameters[param["name"]] = value.removesuffix("\n")
    return parameters


def missing_artifacts(template: dict, pod: PodFS) -> None:
    """executor.go saveArtifact: a non-optional output artifact whose path does not exist fails the
    wait container, so the node is Error (an optional one is left out)."""
    for artifact in template.get("outputs", {}).get("artifacts", []):
        if "path" in artifact and not artifact.get("optional") \
                and not pod.output(artifact["path"], f"output artifact {artifact['name']!r}").exists():
            raise TemplateError(f"wait: output artifact {artifact['name']!r}: path {artifact['path']} does not exist")


def with_paths(template: dict, values: dict[str, str | None], where: str) -> dict:
    """The template with its artifacts' and output parameters' paths substituted, as Argo
    substitutes the whole template with its inputs (common.ProcessArgs)."""
    def path(value: object, at: str) -> object:
        return substitute(value, values, at) if isinstance(value, str) else value

    inputs = dict(template.get("inputs") or {})
    outputs = dict(template.get("outputs") or {})
    inputs["artifacts"] = [{**a, "path": path(a.get("path"), f"{where}.inputs.artifacts.{a.get('name')}.path")}
                           if "path" in a else a for a in inputs.get("artifacts") or []]
    outputs["artifacts"] = [{**a, "path": path(a.get("path"), f"{where}.outputs.artifacts.{a.get('name')}.path")}
                            if "path" in a else a for a in outputs.get("artifacts") or []]
    outputs["parameters"] = [
        {**p, "valueFrom": {**p["valueFrom"], "path": path(p["valueFrom"]["path"], f"{where}.outputs.parameters."
                                                                                f"{p.get('name')}.path")}}
        if "path" in (p.get("valueFrom") or {}) else p for p in outputs.get("parameters") or []]
    return {**template, "inputs": inputs, "outputs": outputs}


def input_parameters(template: dict, arguments: dict, values: dict[str, str | None], where: str) -> dict[str, str]:
    given: dict[str, str] = {}
    absent: set[str] = set()
    for p in arguments.get("parameters", []):
        raw = str(p.get("value", ""))
        tag = raw.strip()
        if tag.startswith("{{") and tag.endswith("}}") and values.get(tag[2:-2].strip(), "") is None:
            # dag.go resolveDependencyReferences: a pure reference to an absent optional output
            # counts as not supplied, so the input's own default applies.
            absent.add(p["name"])
            continue
        given[p["name"]] = substitute(raw, values, f"{where}.arguments")
    resolved = {}
    for param in template.get("inputs", {}).get("parameters", []):
        if param["name"] in given:
            resolved[param["name"]] = given[param["name"]]
        elif "value" in param or "default" in param:
            resolved[param["name"]] = str(param.get("value", param.get("default")))
        elif param["name"] in absent:
            # common.ProcessArgs: no default either, so the consumer fails (it alone, not the run).
            raise AbsentOptionalError(f"{where}: input parameter {param['name']!r}: its argument is an absent optional "
                                      "(skipped/omitted node output with no default) and it has no default")
        else:
            raise TemplateError(f"{where}: input parameter {param['name']!r} of template {template['name']!r} is not given")
    # common.ProcessArgs substitutes the template, its own input values included, with its inputs:
    # a value of its own may be a template (`{{= ...inputs.parameters.x... }}`).
    own = {**values, **{f"inputs.parameters.{k}": v for k, v in resolved.items()}}
    for param in template.get("inputs", {}).get("parameters", []):
        if param["name"] not in given and "{{" in resolved.get(param["name"], ""):
            resolved[param["name"]] = substitute(resolved[param["name"]], own, f"{where}.inputs.parameters."
                                                 f"{param['name']}", keep_unknown=True)
    return resolved


def input_artifact_sources(template: dict, arguments: dict, where: str) -> dict[str, str | None]:
    """Each input artifact's source: the scope variable its argument's `from` names
    (`tasks.T.outputs.artifacts.A`, `steps.S.outputs.artifacts.A`, `inputs.artifacts.A`), or None
    for an optional input nobody supplies (key-only inputs, see `keyed_inputs`, and inputs with
    their own `raw` data aside)."""
    given = {a["name"]: a for a in arguments.get("artifacts", [])}
    found: dict[str, str | None] = {}
    for artifact in template.get("inputs", {}).get("artifacts", []):
        name = artifact["name"]
        if name in keyed_inputs(template, arguments, where) or (name not in given and "raw" in artifact):
            continue
        argument = given.get(name, {})
        ref = str(argument.get("from", "")).strip()
        parts = ref.removeprefix("{{").removesuffix("}}").strip().split(".")
        if not ref and artifact.get("optional"):
            found[name] = None  # executor.go: an optional input that is not supplied is not loaded
        elif ref.startswith("{{") and (parts[:1] == ["inputs"] and len(parts) == 3 and parts[1] == "artifacts"
                                       or len(parts) == 5 and parts[0] in ("tasks", "steps")
                                       and parts[2:4] == ["outputs", "artifacts"]):
            found[name] = ".".join(parts)
        else:
            source = next((k for k in argument if k not in ("name", "from", "optional")), None)
            what = f"a {source!r} source" if source else "no source"
            raise NotSupported(f"{where}: input artifact {name!r} has {what}: the local runner takes artifacts "
                               "from other tasks or steps ({{tasks.T.outputs.artifacts.A}}), from its caller "
                               "({{inputs.artifacts.A}}) or raw data")
    return found


def keyed_inputs(template: dict, arguments: dict, where: str) -> dict[str, dict]:
    """Key-only input artifacts: the template's own `gcs.key`, no argument for it (Argo: the
    default artifact repository's bucket, executor.go `newDriverArt` / `Relocate`)."""
    given = {a["name"] for a in arguments.get("artifacts", [])}
    keyed = {}
    for artifact in template.get("inputs", {}).get("artifacts", []):
        if artifact["name"] in given:
            continue
        if (artifact.get("gcs") or {}).get("key"):
            if "none" not in (artifact.get("archive") or {}):
                raise TemplateError(f"{where}: input artifact {artifact['name']!r}: a key-only input runs locally only "
                                    "unarchived (archive: {none: {}})")
            keyed[artifact["name"]] = artifact
    return keyed


def environment(container: dict, values: dict[str, str | None], secrets: Mapping[tuple[str, str], str], cwd: Path,
                where: str, pod: PodFS) -> dict[str, str]:
    """This machine's environment (the image's stand in), the pod's own temporary folder (TMPDIR,
    as a pod's /tmp is its own) and progress file (ARGO_PROGRESS_FILE, workflowpod.go), then the
    container's `env` with its container paths rewritten."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH", "")]))
    env["TMPDIR"] = pod.local("/tmp")
    env["ARGO_PROGRESS_FILE"] = pod.local(PROGRESS_FILE)
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = pod.rewrite(substitute(str(var["value"]), values, f"{where}.env.{var['name']}"))
            continue
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            raise TemplateError(f"{where}.env.{var['name']}: only value and secretKeyRef are supported locally")
        key = (ref["name"], ref["key"])
        if key in secrets:
            env[var["name"]] = secrets[key]
        elif not ref.get("optional"):
            raise TemplateError(f"{where}.env.{var['name']}: no local value for secret {ref['name']}/{ref['key']}")
    return env


def skipped_default(param: dict) -> str | None:
    value_from = param.get("valueFrom", {})
    return str(value_from["default"]) if "default" in value_from else None
