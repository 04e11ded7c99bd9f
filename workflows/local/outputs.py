"""A dag or steps template's own outputs, taken from what its tasks or steps made
(controller/operator.go getTemplateOutputsFromScope, scope.go resolveParameter/resolveArtifact).

An output parameter is `valueFrom.parameter` (a `{{tasks.T.outputs.parameters.P}}` reference) or
`valueFrom.expression`; an artifact is `from: {{tasks.T.outputs.artifacts.A}}` or `fromExpression`. One that cannot be
resolved takes `valueFrom.default`, else the template errors (an optional artifact is dropped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workflows.local.expr import evaluate
from workflows.local.templating import NotSupported, TemplateError


def nested_env(values: dict[str, str | None]) -> dict[str, Any]:
    """Flat scope variables (`tasks.a.outputs.result`) as the nested maps expr-lang walks."""
    env: dict[str, Any] = {}
    for key, value in values.items():
        node = env
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if not isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = value
    return env


def _tag(reference: str) -> str:
    return reference.strip().removeprefix("{{").removesuffix("}}").strip()


def nested_outputs(template: dict, scope: dict[str, str | None], artifacts: dict[str, Path]
                   ) -> tuple[dict[str, str | None], dict[str, Path]]:
    outputs = template.get("outputs") or {}
    where = f"template {template['name']!r}.outputs"
    parameters: dict[str, str | None] = {}
    for param in outputs.get("parameters") or []:
        value_from = param.get("valueFrom")
        if not value_from:
            raise TemplateError(f"{where}: output parameters must have a valueFrom specified")
        default = value_from.get("default")
        if "parameter" in value_from:
            tag = _tag(str(value_from["parameter"]))
            value = scope.get(tag)
            if tag not in scope or value is None:
                if default is None:
                    reason = "is an absent optional (skipped/omitted node output with no default)" if tag in scope \
                        else "cannot be resolved"
                    raise TemplateError(f"{where}: output parameter {param['name']!r}: {{{{{tag}}}}} {reason}")
                value = str(default)
        elif "expression" in value_from:
            try:
                result = evaluate(str(value_from["expression"]), nested_env(scope))
            except NotSupported:
                raise
            except TemplateError:
                result = None
            if result is None:
                if default is None:
                    raise TemplateError(f"{where}: output parameter {param['name']!r}: failed to evaluate expression "
                                        f"{value_from['expression']!r}")
                result = default
            value = result if isinstance(result, str) else str(result).lower() if isinstance(result, bool) else str(result)
        else:
            kind = next(iter(value_from), "nothing")
            raise NotSupported(f"{where}: output parameter {param['name']!r}: valueFrom.{kind} of a dag or steps "
                               "template is not supported by the local runner")
        parameters[param["name"]] = value
    found: dict[str, Path] = {}
    for artifact in outputs.get("artifacts") or []:
        if "fromExpression" in artifact:
            # scope.go resolveArtifact: the expression over the scope, artifacts included, names one.
            try:
                chosen = evaluate(str(artifact["fromExpression"]), nested_env({**scope, **artifacts}))
            except NotSupported:
                raise
            except TemplateError as exc:
                chosen = exc
            if isinstance(chosen, Path):
                found[artifact["name"]] = chosen
            elif not artifact.get("optional"):
                raise TemplateError(f"{where}: unable to resolve outputs from scope: artifact {artifact['name']!r}: "
                                    f"{artifact['fromExpression']!r} gave {chosen}, not an artifact")
            continue
        tag = _tag(str(artifact.get("from", "")))
        if tag in artifacts:
            found[artifact["name"]] = artifacts[tag]
        elif not artifact.get("optional"):
            raise TemplateError(f"{where}: unable to resolve outputs from scope: Unable to resolve: {{{{{tag}}}}}")
    return parameters, found
