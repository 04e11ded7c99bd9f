"""The small subset of expr-lang (github.com/expr-lang/expr) that our Argo expressions use.

Argo evaluates `retryStrategy.expression` with expr-lang over `lastRetry.*` strings
(workflow/controller/operator.go, `processNodeRetries` and `buildRetryStrategyLocalScope`; the
functions come from util/expr/env/env.go, where `asInt` is expr's `int`). To test what a
cluster would decide, and to decide the same on a laptop, this module evaluates that subset:
`||`, `&&`, `!`, parentheses, `==`, `!=`, `in [...]`, `matches 'regex'`, `asInt(...)`, string and
integer literals and dotted variable names. Anything else is an error, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from steps.errors import TrainyardError

_TOKEN = re.compile(r"""\s*(?:(\|\||&&|==|!=|[()\[\],!])|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(-?\d+)|([A-Za-z_][\w.]*))""")


class ExprError(TrainyardError):
    """An expression outside the supported subset, or one that does not evaluate."""


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens, at = [], 0
    while at < len(text.rstrip()):
        match = _TOKEN.match(text, at)
        if not match:
            raise ExprError(f"expression {text!r}: cannot read {text[at:at + 20]!r}")
        op, single, double, number, name = match.groups()
        if op:
            tokens.append(("op", op))
        elif single is not None or double is not None:
            tokens.append(("str", (single if single is not None else double).replace("\\'", "'").replace('\\"', '"')))
        elif number is not None:
            tokens.append(("int", int(number)))
        elif name in ("in", "matches", "contains"):
            tokens.append(("op", name))
        else:
            tokens.append(("name", name))
        at = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, variables: Mapping[str, str]) -> None:
        self.text, self.variables, self.tokens, self.at = text, variables, _tokens(text), 0

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, Any]:
        token = self._peek()
        if token is None or (value is not None and token != ("op", value)):
            raise ExprError(f"expression {self.text!r}: expected {value or 'more'} at token {self.at + 1}")
        self.at += 1
        return token

    def parse(self) -> bool:
        value = self._or()
        if self._peek() is not None:
            raise ExprError(f"expression {self.text!r}: unexpected {self._peek()[1]!r}")
        if not isinstance(value, bool):
            raise ExprError(f"expression {self.text!r} gives {value!r}, not a boolean")
        return value

    def _or(self) -> Any:
        return self._chain("||", self._and, any)

    def _and(self) -> Any:
        return self._chain("&&", self._unary, all)

    def _chain(self, op: str, operand: Any, combine: Any) -> Any:
        """`a op b op c`, combined left to right (expr evaluates every operand it reaches)."""
        values = [operand()]
        while self._peek() == ("op", op):
            self._take()
            values.append(operand())
        return values[0] if len(values) == 1 else combine(bool(v) for v in values)

    def _unary(self) -> Any:
        if self._peek() == ("op", "!"):
            self._take()
            return not self._unary()
        return self._comparison()

    def _comparison(self) -> Any:
        left = self._operand()
        token = self._peek()
        if token is None or token[0] != "op" or token[1] not in ("==", "!=", "in", "matches", "contains"):
            return left
        op = self._take()[1]
        right = self._operand()
        if op in ("==", "!="):
            if type(left) is not type(right):  # expr compares 137 and "137" as different
                return op == "!="
            return (left == right) == (op == "==")
        if op == "in":
            if not isinstance(right, list):
                raise ExprError(f"expression {self.text!r}: `in` needs a list")
            return left in right
        if not (isinstance(left, str) and isinstance(right, str)):
            raise ExprError(f"expression {self.text!r}: `{op}` needs strings")
        return re.search(right, left) is not None if op == "matches" else right in left

    def _operand(self) -> Any:
        kind, value = self._take()
        if kind in ("str", "int"):
            return value
        if (kind, value) == ("op", "("):
            inner = self._or()
            self._take(")")
            return inner
        if (kind, value) == ("op", "["):
            items = []
            while self._peek() != ("op", "]"):
                items.append(self._operand())
                if self._peek() == ("op", ","):
                    self._take()
            self._take("]")
            return items
        if kind == "name" and value == "asInt":
            self._take("(")
            argument = self._or()
            self._take(")")
            try:
                return int(argument)
            except (TypeError, ValueError):
                raise ExprError(f"expression {self.text!r}: asInt({argument!r}) is not an integer") from None
        if kind == "name" and value in ("true", "false"):
            return value == "true"
        if kind == "name":
            if value not in self.variables:
                raise ExprError(f"expression {self.text!r}: unknown variable {value}")
            return self.variables[value]
        raise ExprError(f"expression {self.text!r}: unexpected {value!r}")


def evaluate(expression: str, variables: Mapping[str, str]) -> bool:
    """The boolean value of `expression` with `variables` (all strings, as Argo passes them)."""
    return _Parser(expression, variables).parse()
