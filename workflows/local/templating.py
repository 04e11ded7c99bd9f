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


class NotSupported(TemplateError):
    """Something Argo would run that the local runner does not: a refusal by name, never to be
    reported as an outcome Argo would give."""


class AbsentOptionalError(TemplateError):
    """A skipped or omitted producer's output, which has no default, used inside a value: in Argo
    the consuming task errors (util/template/simple_template.go)."""


def substitute(text: str, values: Mapping[str, str | None], where: str) -> str:
    """Replace every `{{name}}` in `text` with `values[name]`."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("="):
            raise NotSupported(f"{where}: expression tag {{{{{name}}}}} is not supported by the local runner")
        if name not in values:
            raise TemplateError(f"{where}: unknown variable {{{{{name}}}}}")
        if values[name] is None:  # util/template/simple_template.go: a skipped producer's output, no default
            raise AbsentOptionalError(f"{where}: unable to substitute {{{{{name}}}}}: output is an absent optional "
                                "(skipped/omitted node with no default)")
        return values[name]

    return TAG.sub(replace, text)
