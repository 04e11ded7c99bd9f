"""Argo's simple `{{...}}` template tags, resolved the way Argo resolves them.

Only the tags our local runner supports; anything else is an error naming the tag, never a
silently empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from steps.errors import TrainyardError

TAG = re.compile(r"{{\s*([^{}]+?)\s*}}")


class TemplateError(TrainyardError):
    """A manifest uses something the local runner cannot resolve or does not support."""


def substitute(text: str, values: Mapping[str, str], where: str) -> str:
    """Replace every `{{name}}` in `text` with `values[name]`."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("="):
            raise TemplateError(f"{where}: expression tag {{{{{name}}}}} is not supported by the local runner")
        if name not in values:
            raise TemplateError(f"{where}: unknown variable {{{{{name}}}}}")
        return values[name]

    return TAG.sub(replace, text)


def evaluate_when(expression: str, where: str) -> bool:
    """Argo `when:` after substitution, limited to `a == b`, `a != b`, `true`/`false` and `&&`/`||`."""
    ors = [part.strip() for part in expression.split("||")]
    return any(all(_compare(term.strip(), where) for term in part.split("&&")) for part in ors)


def _compare(term: str, where: str) -> bool:
    for op in ("==", "!="):
        if op in term:
            left, right = (side.strip().strip("'\"") for side in term.split(op, 1))
            return (left == right) if op == "==" else (left != right)
    lowered = term.strip().strip("'\"").lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise TemplateError(f"{where}: cannot evaluate when-condition {term!r} locally (use ==, !=, && or ||)")


def parse_depends(depends: str, where: str) -> list[str]:
    """Task names in a `depends` expression. Only `A && B` and `A.Succeeded` forms are supported:
    the local runner stops at the first failure, so other outcomes never arise."""
    names = []
    for term in depends.split("&&"):
        name = term.strip().strip("()")
        if "||" in name or "!" in name:
            raise TemplateError(f"{where}: depends {depends!r}: only '&&' of task names is supported locally")
        name = name.removesuffix(".Succeeded")
        if "." in name:
            raise TemplateError(f"{where}: depends {depends!r}: only the .Succeeded outcome is supported locally")
        names.append(name)
    return names


_EXIT_CODE = re.compile(r"""^(?:asInt\(lastRetry\.exitCode\)|lastRetry\.exitCode)\s*==\s*['"]?(\d+)['"]?$""")
_STATUS = re.compile(r"""^lastRetry\.status\s*==\s*['"](\w+)['"]$""")


def retry_allowed(expression: str, exit_code: int, where: str) -> bool:
    """Argo's retryStrategy.expression for a local process, limited to `||` of exit-code and
    status comparisons. A local step always ends with an exit code, never with status Error."""
    for term in (part.strip() for part in expression.split("||")):
        if match := _EXIT_CODE.match(term):
            if exit_code == int(match.group(1)):
                return True
        elif _STATUS.match(term):
            continue  # Error/Failed statuses of a pod do not arise locally
        else:
            raise TemplateError(f"{where}.retryStrategy.expression: cannot evaluate {term!r} locally")
    return False
