"""Go's `regexp` for the expressions the runner evaluates (govaluate's `=~`/`!~` in `when`,
expr-lang's `matches`): RE2 syntax and RE2's linear-time matching, through Google's RE2 bindings.

Python's `re` backtracks, so a parameter value such as `aaa…!` against `^(a+)+$` would keep the
runner busy for minutes where Go answers at once; and it accepts constructs Go refuses
(look-arounds, backreferences), which Go reports as an error.
"""

from __future__ import annotations

from functools import lru_cache

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print its parse errors to stderr; ours are raised


class RegexError(ValueError):
    """A pattern Go's regexp.Compile refuses."""


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re2._Regexp:
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RegexError(f"error parsing regexp: {reason}: `{pattern}`") from None


def search(pattern: str, text: str) -> bool:
    """regexp.MatchString: whether `pattern` matches anywhere in `text`."""
    return _compile(pattern).search(text) is not None
