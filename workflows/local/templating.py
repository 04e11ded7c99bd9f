"""Argo's simple `{{...}}` template tags, resolved the way Argo resolves them.

Only the tags our local runner supports; anything else is an error naming the tag, never a
silently empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from steps.errors import TrainyardError

TAG = re.compile(r"{{(.*?)}}", re.DOTALL)  # as Argo's fasttemplate splits them: up to the first }}


class TemplateError(TrainyardError):
    """A manifest uses something the local runner cannot resolve or does not support."""


class NotSupported(TemplateError):
    """Something Argo would run that the local runner does not: a refusal by name, never to be
    reported as an outcome Argo would give."""


class NodeError(TemplateError):
    """What Argo's controller or executor gives this node too: the node ends Error with the message,
    and the run goes on as Argo's would (not a refusal)."""


class AbsentOptionalError(NodeError):
    """A skipped or omitted producer's output, which has no default, used inside a value: in Argo
    the consuming task errors (util/template/simple_template.go)."""


class ErrorValue(str):
    """A variable whose use is Argo's error for the node using it (its message is the value)."""


def substitute(text: str, values: Mapping[str, str | None], where: str, keep_unknown: bool = False) -> str:
    """Replace every `{{name}}` in `text` with `values[name]`. `keep_unknown`: leave a tag that
    names no variable as it is (Argo's replace without strict prefixes)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name.startswith("="):
            return expression(name[1:], values, where)
        if name not in values and keep_unknown:
            return match.group(0)
        if name not in values:
            raise TemplateError(f"{where}: unknown variable {{{{{name}}}}}")
        if isinstance(values[name], ErrorValue):
            raise NodeError(f"{where}: {values[name]}")
        if values[name] is None:  # util/template/simple_template.go: a skipped producer's output, no default
            raise AbsentOptionalError(f"{where}: unable to substitute {{{{{name}}}}}: output is an absent optional "
                                "(skipped/omitted node with no default)")
        return values[name]

    return TAG.sub(replace, text)


def expression(text: str, values: Mapping[str, str | None], where: str) -> str:
    """A `{{=...}}` tag (util/template/expression_template.go expressionReplaceCore): expr-lang over
    the variables in scope; a string result as it is, anything else as its JSON."""
    import json

    from workflows.local.expr import ExprError, evaluate
    from workflows.local.outputs import nested_env

    try:
        result = evaluate(text, nested_env(dict(values)))
    except ExprError as exc:
        raise TemplateError(f"{where}: failed to evaluate expression: {exc}") from None
    if result is None:
        raise TemplateError(f"{where}: failed to evaluate expression {text!r}")
    return result if isinstance(result, str) else json.dumps(result, separators=(",", ":"))
