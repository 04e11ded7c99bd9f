"""A task's `when:` evaluated as Argo evaluates it: controller/steps.go `shouldExecute` parses the
substituted text with govaluate (github.com/Knetic/govaluate, parsing.go `readToken`), turns bare
words into strings and evaluates the result without parameters.

So `10 > 9` compares numbers (10 and 9, not the strings), `1.0 == 1` is true, `true` is a boolean,
`foo == foo` compares two strings, and a dotted word like `a.b` is a parameter accessor that has no
value (an error). Supported operators: `== != > >= < <= =~ !~ in && || !` and unary `-`, `in`
over a parenthesised list (`"a" in ("a", "b")`); arithmetic, bitwise and ternary are refused by
name. An error here makes the task Error, as in Argo.

Parameters are substituted into `when` as text, so a parameter value can rewrite the expression:
`=~` matches as Go's RE2 does (linear time, see goregex.py), and nesting deeper than MAX_DEPTH
(parentheses, `!`, `-`) is refused by name instead of exhausting Python's stack.
"""

from __future__ import annotations

from typing import Any

from workflows.local.goregex import RegexError, search
from workflows.local.templating import NotSupported, TemplateError

_SYMBOLS = {"==", "!=", ">", ">=", "<", "<=", "=~", "!~", "&&", "||", "!", "-", ","}
MAX_DEPTH = 64  # nesting levels; each costs a few Python frames
_REFUSED = {"+", "*", "/", "%", "**", "&", "|", "^", "<<", ">>", "~", "?", ":", "??"}


class WhenError(TemplateError):
    """A `when` expression that Argo would fail to parse or evaluate."""


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch.isdigit() or ch == ".":
            j = i
            while j < len(text) and (text[j].isdigit() or text[j] == "."):
                j += 1
            try:
                tokens.append(("lit", float(text[i:j])))
            except ValueError:
                raise WhenError(f"Unable to parse numeric value '{text[i:j]}' to float64") from None
            i = j
        elif ch in "'\"":
            j, value = i + 1, []
            while j < len(text) and text[j] not in "'\"":
                if text[j] == "\\" and j + 1 < len(text):
                    j += 1
                value.append(text[j])
                j += 1
            if j >= len(text):
                raise WhenError("Unclosed string literal")
            tokens.append(("lit", "".join(value)))
            i = j + 1
        elif ch == "[":
            j = text.find("]", i)
            if j < 0:
                raise WhenError("Unclosed parameter bracket")
            tokens.append(("lit", text[i + 1:j]))  # an escaped variable: a string, as Argo converts it
            i = j + 1
        elif ch.isalpha():
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] in "_."):
                j += 1
            word = text[i:j]
            if word in ("true", "false"):
                tokens.append(("lit", word == "true"))
            elif word in ("in", "IN"):
                tokens.append(("op", "in"))
            elif "." in word:
                # govaluate reads this as a parameter accessor; Argo passes no parameters.
                raise WhenError(f"'{word}' is read as a parameter accessor, which has no value (quote it)")
            else:
                tokens.append(("lit", word))  # Argo turns VARIABLE tokens into strings
            i = j
        elif ch in "(),":
            tokens.append(("op", ch))
            i += 1
        else:
            j = i
            while j < len(text) and not (text[j].isalnum() or text[j].isspace() or text[j] in "()[]'\","):
                j += 1
            symbol = text[i:j]
            if symbol not in _SYMBOLS | _REFUSED:
                raise WhenError(f"Invalid token: '{symbol}' (hint: try wrapping the affected expression in quotes (\"))")
            tokens.append(("op", symbol))
            i = j
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.pos = 0
        self.depth = 0

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise NotSupported(f"nested deeper than {MAX_DEPTH} levels: not supported by the local runner")

    def at(self, *ops: str) -> str | None:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "op" and self.tokens[self.pos][1] in ops:
            return self.tokens[self.pos][1]
        return None

    def next(self) -> tuple[str, Any]:
        if self.pos >= len(self.tokens):
            raise WhenError("Unexpected end of expression")
        self.pos += 1
        token = self.tokens[self.pos - 1]
        if token[0] == "op" and token[1] in _REFUSED:
            raise NotSupported(f"operator '{token[1]}' is not supported by the local runner")
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.pos < len(self.tokens):
            raise WhenError(f"unexpected '{self.tokens[self.pos][1]}'")
        return value

    def or_(self) -> Any:
        left = self.and_()
        while self.at("||"):
            self.next()
            right = self.and_()
            left = _bool(left, "||") or _bool(right, "||")
        return left

    def and_(self) -> Any:
        left = self.compare()
        while self.at("&&"):
            self.next()
            right = self.compare()
            left = _bool(left, "&&") and _bool(right, "&&")
        return left

    def compare(self) -> Any:
        left = self.unary()
        while op := self.at("==", "!=", ">", ">=", "<", "<=", "=~", "!~", "in"):
            self.next()
            left = _compare(op, left, self.unary())
        return left

    def unary(self) -> Any:
        if self.at("!"):
            self.next()
            self.nested()
            value = not _bool(self.unary(), "!")
            self.depth -= 1
            return value
        if self.at("-"):
            self.next()
            self.nested()
            value = self.unary()
            self.depth -= 1
            if not isinstance(value, float):
                raise WhenError(f"Value '{value}' cannot be used with the prefix '-'")
            return -value
        kind, value = self.next()
        if (kind, value) == ("op", "("):
            self.nested()
            inner = self.or_()
            items = [inner]
            while self.at(","):  # govaluate's SEPARATOR: `(a, b)` is an array
                self.next()
                items.append(self.or_())
            if not self.at(")"):
                raise WhenError("Unbalanced parenthesis")
            self.next()
            self.depth -= 1
            return items if len(items) > 1 else inner
        if kind == "op":
            raise WhenError(f"unexpected '{value}'")
        return value


def _bool(value: Any, op: str) -> bool:
    if not isinstance(value, bool):
        raise WhenError(f"Value '{value}' cannot be used with the logical operator '{op}', it is not a bool")
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "in":  # govaluate: reflect.DeepEqual with each element of an array
        if not isinstance(right, list):
            raise WhenError(f"Value '{right}' cannot be used with the comparator 'in', it is not an array")
        return any(type(left) is type(item) and left == item for item in right)
    if op == "==":  # govaluate: reflect.DeepEqual, so a number never equals a string
        return type(left) is type(right) and left == right
    if op == "!=":
        return not (type(left) is type(right) and left == right)
    if op in ("=~", "!~"):
        if not (isinstance(left, str) and isinstance(right, str)):
            raise WhenError(f"Value '{left}' cannot be used with the comparator '{op}', it is not a string")
        try:
            return search(right, left) == (op == "=~")
        except RegexError as exc:
            raise WhenError(str(exc)) from None
    both_numbers = isinstance(left, float) and isinstance(right, float)
    if not (both_numbers or (isinstance(left, str) and isinstance(right, str))):
        raise WhenError(f"Value '{left}' cannot be used with the comparator '{op}', it is not a number")
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op]


def should_execute(when: str) -> bool:
    """steps.go shouldExecute: an empty `when` runs; otherwise the expression must give a boolean."""
    if not when.strip():
        return True
    try:
        result = _Parser(when).parse()
    except RecursionError:  # MAX_DEPTH keeps far from it; a deep caller's stack might not
        raise NotSupported("nested too deeply: not supported by the local runner") from None
    if not isinstance(result, bool):
        raise WhenError(f"Expected boolean result from when expression, got '{result}'")
    return result
