"""The part of expr-lang (github.com/expr-lang/expr) that Argo evaluates for DAG `depends` and
`retryStrategy.expression` (util/expr/argoexpr/eval.go: EvalBool, over util/expr/env's GetFuncMap).

Supported: literals (numbers, quoted strings, true/false/nil, [lists]), names and `a.b` member
access, `! not - && and || or == != < <= > >= in matches contains startsWith endsWith`,
parentheses and the functions asInt/int, asFloat/float, string, len. Anything else is a
TemplateError naming the construct, never a guess. `matches` is Go's RE2 (goregex.py); nesting
deeper than MAX_DEPTH is refused by name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from workflows.local.goregex import RegexError, search
from workflows.local.templating import NotSupported, TemplateError

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<number>\d+\.\d+|\d+)
    | (?P<string>'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")
    | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\],.\-+?:])
    )""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_WORD_OPS = {"and": "&&", "or": "||", "not": "!"}
MAX_DEPTH = 64  # nesting levels (parentheses, lists, calls, prefixes); each costs a few Python frames
_COMPARATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "matches", "contains", "startsWith", "endsWith")


class ExprError(TemplateError):
    """An expression Argo would reject, or one this runner does not evaluate."""


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise NotSupported(f"cannot parse {text[pos:].strip()!r}: not supported by the local runner")
        pos = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "number":
            tokens.append(("lit", float(value) if "." in value else int(value)))
        elif kind == "string":
            tokens.append(("lit", re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), value[1:-1])))
        elif kind == "name" and value in ("true", "false"):
            tokens.append(("lit", value == "true"))
        elif kind == "name" and value == "nil":
            tokens.append(("lit", None))
        elif kind == "name" and value in _WORD_OPS:
            tokens.append(("op", _WORD_OPS[value]))
        elif kind == "name" and value in _COMPARATORS:
            tokens.append(("op", value))
        else:
            tokens.append(("op" if kind == "op" else "name", value))
    return tokens


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    # expr's `==`: numbers compare by value across int/float; other kinds only equal their own kind.
    if _is_number(left) and _is_number(right):
        return left == right
    return type(left) is type(right) and left == right


def _order(op: str, left: Any, right: Any) -> bool:
    if not ((_is_number(left) and _is_number(right)) or (isinstance(left, str) and isinstance(right, str))):
        raise ExprError(f"invalid operation: {left!r} {op} {right!r} (mismatched types)")
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _as_int(value: Any) -> int:
    if isinstance(value, str):  # expr's builtin int: strconv.Atoi
        if not re.fullmatch(r"[+-]?\d+", value):
            raise ExprError(f"invalid operation: int({value!r})")
        return int(value)
    if _is_number(value):
        return int(value)
    raise ExprError(f"invalid operation: int({value!r})")


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ExprError(f"invalid operation: float({value!r})") from None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "asInt": _as_int, "int": _as_int, "asFloat": _as_float, "float": _as_float,
    "string": lambda v: v if isinstance(v, str) else str(v), "len": len,
}
# util/expr/env/env.go: sprig's functions under `sprig.` (only these here).
SPRIG: dict[str, Callable[..., Any]] = {
    "sha256sum": lambda v: hashlib.sha256(str(v).encode()).hexdigest(),
}


class _Parser:
    def __init__(self, text: str, env: Mapping[str, Any]):
        self.tokens = _tokens(text)
        self.pos = 0
        self.env = env
        self.depth = 0

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise NotSupported(f"nested deeper than {MAX_DEPTH} levels: not supported by the local runner")

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, op: str | None = None) -> tuple[str, Any]:
        token = self.peek()
        if token is None or (op is not None and token != ("op", op)):
            raise ExprError(f"expected {op or 'a value'} at the end of the expression")
        self.pos += 1
        return token

    def at(self, *ops: str) -> str | None:
        token = self.peek()
        return token[1] if token and token[0] == "op" and token[1] in ops else None

    # Each level returns a thunk, so that && and || short-circuit as in expr.
    def parse(self) -> Any:
        thunk = self.ternary()
        if self.peek() is not None:
            raise ExprError(f"unexpected {self.peek()[1]!r}")
        return thunk()

    def ternary(self) -> Callable[[], Any]:
        condition = self.or_()
        if not self.at("?"):
            return condition
        self.take()
        yes = self.ternary()
        self.take(":")
        no = self.ternary()

        def run() -> Any:
            value = condition()
            if not isinstance(value, bool):
                raise ExprError(f"invalid operation: {value!r} used as a boolean")
            return yes() if value else no()
        return run

    def or_(self) -> Callable[[], Any]:
        left = self.and_()
        while self.at("||"):
            self.take()
            left = self._logical(left, self.and_(), stop_on=True)
        return left

    def and_(self) -> Callable[[], Any]:
        left = self.compare()
        while self.at("&&"):
            self.take()
            left = self._logical(left, self.compare(), stop_on=False)
        return left

    @staticmethod
    def _logical(left: Callable[[], Any], right: Callable[[], Any], stop_on: bool) -> Callable[[], Any]:
        def run() -> bool:
            value = left()
            if not isinstance(value, bool):
                raise ExprError(f"invalid operation: {value!r} used as a boolean")
            if value is stop_on:
                return value
            other = right()
            if not isinstance(other, bool):
                raise ExprError(f"invalid operation: {other!r} used as a boolean")
            return other
        return run

    def compare(self) -> Callable[[], Any]:
        left = self.additive()
        op = self.at(*_COMPARATORS)
        if not op:
            return left
        self.take()
        right = self.additive()

        def run() -> bool:
            a, b = left(), right()
            if op in ("==", "!="):
                return _equal(a, b) == (op == "==")
            if op == "in":
                return any(_equal(a, item) for item in b) if isinstance(b, list) else (a in b)
            if op in ("matches", "contains", "startsWith", "endsWith"):
                if not (isinstance(a, str) and isinstance(b, str)):
                    raise ExprError(f"invalid operation: {a!r} {op} {b!r}")
                return {"matches": lambda: _matches(a, b), "contains": lambda: b in a,
                        "startsWith": lambda: a.startswith(b), "endsWith": lambda: a.endswith(b)}[op]()
            return _order(op, a, b)
        return run

    def _call(self, function: Callable[..., Any]) -> Callable[[], Any]:
        self.take("(")
        args = []
        while not self.at(")"):
            args.append(self.ternary())
            if not self.at(")"):
                self.take(",")
        self.take(")")
        return lambda: function(*[arg() for arg in args])

    def additive(self) -> Callable[[], Any]:
        left = self.unary()
        while self.at("+"):
            self.take()
            left = self._add(left, self.unary())
        return left

    @staticmethod
    def _add(left: Callable[[], Any], right: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            a, b = left(), right()
            if isinstance(a, str) and isinstance(b, str):
                return a + b
            if _is_number(a) and _is_number(b):
                return a + b
            raise ExprError(f"invalid operation: {a!r} + {b!r} (mismatched types)")
        return run

    def unary(self) -> Callable[[], Any]:
        self.nested()
        try:
            return self._unary()
        finally:
            self.depth -= 1

    def _unary(self) -> Callable[[], Any]:
        if self.at("!"):
            self.take()
            inner = self.unary()

            def negate() -> bool:
                value = inner()
                if not isinstance(value, bool):
                    raise ExprError(f"invalid operation: !{value!r}")
                return not value
            return negate
        if self.at("-"):
            self.take()
            inner = self.unary()
            return lambda: -inner()
        return self.postfix()

    def postfix(self) -> Callable[[], Any]:
        kind, value = self.take()
        if kind == "lit":
            return lambda: value
        if (kind, value) == ("op", "("):
            inner = self.ternary()
            self.take(")")
            return inner
        if (kind, value) == ("op", "["):
            items = []
            while not self.at("]"):
                items.append(self.ternary())
                if not self.at("]"):
                    self.take(",")
            self.take("]")
            return lambda: [item() for item in items]
        if kind != "name":
            raise ExprError(f"unexpected {value!r}")
        if value == "sprig" and self.at("."):
            self.take()
            name = self.take()[1]
            if name not in SPRIG or not self.at("("):
                raise NotSupported(f"function sprig.{name}() is not supported by the local runner")
            return self._call(SPRIG[name])
        if self.at("("):
            if value not in FUNCTIONS:
                raise NotSupported(f"function {value}() is not supported by the local runner")
            return self._call(FUNCTIONS[value])
        if value not in self.env:
            raise ExprError(f"unknown name {value}")
        path = [value]
        while self.at(".", "["):
            if self.take()[1] == ".":
                path.append(self.take()[1])
                continue
            kind, key = self.take()  # a['key']: member access by a quoted name
            if kind != "lit" or not isinstance(key, str):
                raise NotSupported("only a['quoted name'] indexing is supported by the local runner")
            self.take("]")
            path.append(key)
        env = self.env

        def lookup() -> Any:
            current: Any = env[path[0]]
            for key in path[1:]:
                current = current.get(key) if isinstance(current, Mapping) else getattr(current, key, None)
            return current
        return lookup


def _matches(text: str, pattern: str) -> bool:
    try:
        return search(pattern, text)
    except RegexError as exc:
        raise ExprError(str(exc)) from None


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """The value of an expr-lang expression over `env`."""
    try:
        return _Parser(text, env).parse()
    except RecursionError:  # MAX_DEPTH keeps far from it; a deep caller's stack might not
        raise NotSupported("nested too deeply: not supported by the local runner") from None


def evaluate_bool(text: str, env: Mapping[str, Any]) -> bool:
    """argoexpr.EvalBool: the expression must give a boolean."""
    value = evaluate(text, env)
    if not isinstance(value, bool):
        raise ExprError(f"unable to cast expression result '{value}' to bool")
    return value
