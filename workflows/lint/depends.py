"""Reading a DAG task's `depends` expression, e.g. `A && (B.Succeeded || !C.Failed)`.

The grammar is Argo's: task names, optionally with a `.Result`, joined by `&&`, `||` and `!`,
grouped with parentheses.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from workflows.lint.walk import as_list

TASK_RESULTS = (
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
)
_TOKEN = re.compile(r"\s*(?:(&&|\|\||!|\(|\))|([A-Za-z0-9_][-A-Za-z0-9_]*)(?:\.([A-Za-z]+))?)")

Operand = tuple[str, str | None]  # (task name, result such as "Succeeded", or None)


class DependsSyntaxError(ValueError):
    """A `depends` expression that cannot be read."""


def parse_depends(text: str) -> list[Operand]:
    """The (task, result) operands of a `depends` expression, in the order written."""
    parser = _Parser(_tokens(text))
    parser.parse_or()
    if parser.at < len(parser.tokens):
        raise DependsSyntaxError(f"unexpected {parser.tokens[parser.at][1]!r}")
    return parser.operands


def task_dependencies(task: dict[str, Any]) -> list[Operand]:
    """What a DAG task waits for; a `depends` that cannot be read (reported elsewhere) adds nothing."""
    operands: list[Operand] = [
        (name, None) for name in as_list(task.get("dependencies")) if isinstance(name, str)
    ]
    depends = task.get("depends")
    if isinstance(depends, str) and "{{" not in depends:
        with contextlib.suppress(DependsSyntaxError):
            operands += parse_depends(depends)
    return operands


def _tokens(text: str) -> list[tuple[str, str, str | None]]:
    """(kind, text, result) triples; kind is the operator itself or "name"."""
    tokens: list[tuple[str, str, str | None]] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if not match:
            raise DependsSyntaxError(f"unexpected {text[position:].strip()[:20]!r}")
        operator, name, result = match.groups()
        tokens.append((operator, operator, None) if operator else ("name", name, result))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent: or := and ('||' and)*; and := operand ('&&' operand)*."""

    def __init__(self, tokens: list[tuple[str, str, str | None]]) -> None:
        self.tokens = tokens
        self.at = 0
        self.operands: list[Operand] = []

    def parse_or(self) -> None:
        self.parse_and()
        while self._next_is("||"):
            self.at += 1
            self.parse_and()

    def parse_and(self) -> None:
        self.parse_operand()
        while self._next_is("&&"):
            self.at += 1
            self.parse_operand()

    def parse_operand(self) -> None:
        if self.at >= len(self.tokens):
            raise DependsSyntaxError("it ends where a task name is expected")
        kind, text, result = self.tokens[self.at]
        self.at += 1
        if kind == "!":
            self.parse_operand()
        elif kind == "(":
            self.parse_or()
            if not self._next_is(")"):
                raise DependsSyntaxError("a '(' is not closed")
            self.at += 1
        elif kind == "name":
            self.operands.append((text, result))
        else:
            raise DependsSyntaxError(f"unexpected {text!r} where a task name is expected")

    def _next_is(self, kind: str) -> bool:
        return self.at < len(self.tokens) and self.tokens[self.at][0] == kind
