"""The part of expr-lang (github.com/expr-lang/expr) that Argo evaluates for DAG `depends` and
`retryStrategy.expression` (util/expr/argoexpr/eval.go: EvalBool, over util/expr/env's GetFuncMap).

Supported: literals (numbers, quoted strings, true/false/nil, [lists]), names, `a.b` and `a[x]`
access, `! not - + * / % && and || or == != < <= > >= in matches contains startsWith endsWith`,
`a ?? b`, `c ? a : b`, pipes (`x | f(y)` is `f(x, y)`), parentheses, predicates (`{# > 1}`) and
the functions of exprfuncs.py. Anything else is a TemplateError naming the construct, never a
guess. `matches` is Go's RE2 (goregex.py); nesting deeper than MAX_DEPTH is refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from workflows.local.exprfuncs import FUNCTIONS, PREDICATES, SPRIG, ExprError, is_number
from workflows.local.goregex import RegexError, search
from workflows.local.templating import NotSupported

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<number>\d+\.\d+|\d+)
    | (?P<string>'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")
    | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
    | (?P<op>==|!=|<=|>=|&&|\|\||\?\?|[<>!()\[\]{},.\-+*/%?:#|])
    )""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_WORD_OPS = {"and": "&&", "or": "||", "not": "!"}
MAX_DEPTH = 64  # nesting levels (parentheses, lists, calls, prefixes); each costs a few Python frames
_COMPARATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "matches", "contains", "startsWith", "endsWith")


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


def _equal(left: Any, right: Any) -> bool:
    # expr's `==`: numbers compare by value across int/float; other kinds only equal their own kind.
    if is_number(left) and is_number(right):
        return left == right
    return type(left) is type(right) and left == right


def _order(op: str, left: Any, right: Any) -> bool:
    if not ((is_number(left) and is_number(right)) or (isinstance(left, str) and isinstance(right, str))):
        raise ExprError(f"invalid operation: {left!r} {op} {right!r} (mismatched types)")
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


class _Parser:
    def __init__(self, text: str, env: Mapping[str, Any]):
        self.tokens = _tokens(text)
        self.pos = 0
        self.env = env
        self.depth = 0
        self.elements: list[Any] = []  # the current `#` of each predicate being evaluated
        self.predicates = 0  # predicates being parsed: where `#` may stand

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
        thunk = self.pipe()
        if self.peek() is not None:
            raise ExprError(f"unexpected {self.peek()[1]!r}")
        return thunk()

    def pipe(self) -> Callable[[], Any]:
        """`x | f(a)` is `f(x, a)` (expr's pipe operator)."""
        left = self.ternary()
        while self.at("|"):
            self.take()
            kind, name = self.take()
            if kind != "name" or not self.at("("):
                raise ExprError(f"expected a function call after |, got {name!r}")
            left = self._call(name, first=left)
        return left

    def ternary(self) -> Callable[[], Any]:
        condition = self.nullish()
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

    def nullish(self) -> Callable[[], Any]:
        left = self.or_()
        while self.at("??"):
            self.take()
            left = (lambda first, second: lambda: (lambda v: second() if v is None else v)(first()))(left, self.or_())
        return left

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

    def _call(self, name: str, first: Callable[[], Any] | None = None) -> Callable[[], Any]:
        """A call of a function of exprfuncs.py; `first`: the value piped into it."""
        if name not in FUNCTIONS and name not in PREDICATES:
            raise NotSupported(f"function {name}() is not supported by the local runner")
        self.take("(")
        args = [first] if first is not None else []
        while not self.at(")"):
            args.append(self.predicate() if name in PREDICATES and len(args) == 1 else self.pipe())
            if not self.at(")"):
                self.take(",")
        self.take(")")
        if name in PREDICATES:
            if len(args) != 2:
                raise ExprError(f"{name}() takes an array and a predicate")
            items, test = args
            return lambda: PREDICATES[name](items(), test())
        function = FUNCTIONS[name]
        return lambda: _apply(name, function, [arg() for arg in args])

    def predicate(self) -> Callable[[], Callable[[Any], Any]]:
        """`{ ... }`: a function of `#`, the element it is given."""
        self.take("{")
        self.predicates += 1
        body = self.pipe()
        self.predicates -= 1
        self.take("}")

        def bind() -> Callable[[Any], Any]:
            def call(element: Any) -> Any:
                self.elements.append(element)
                try:
                    return body()
                finally:
                    self.elements.pop()
            return call
        return bind

    def additive(self) -> Callable[[], Any]:
        left = self.multiplicative()
        while op := self.at("+", "-"):
            self.take()
            left = self._arithmetic(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Callable[[], Any]:
        left = self.unary()
        while op := self.at("*", "/", "%"):
            self.take()
            left = self._arithmetic(op, left, self.unary())
        return left

    @staticmethod
    def _arithmetic(op: str, left: Callable[[], Any], right: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            a, b = left(), right()
            if op == "+" and isinstance(a, str) and isinstance(b, str):
                return a + b
            if not (is_number(a) and is_number(b)) or (op == "%" and not (isinstance(a, int) and isinstance(b, int))):
                raise ExprError(f"invalid operation: {a!r} {op} {b!r} (mismatched types)")
            if op in ("/", "%") and b == 0:
                raise ExprError(f"runtime error: {a!r} {op} 0")
            return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
                    "%": lambda: a % b}[op]()
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
        value = self.primary()
        while self.at(".", "["):
            if self.take()[1] == ".":
                kind, key = self.take()
                if kind != "name":
                    raise ExprError(f"expected a name after ., got {key!r}")
                value = (lambda of, k: lambda: _member(of(), k))(value, key)
                continue
            index = self.pipe()
            self.take("]")
            value = (lambda of, i: lambda: _member(of(), i()))(value, index)
        return value

    def primary(self) -> Callable[[], Any]:
        kind, value = self.take()
        if kind == "lit":
            return lambda: value
        if (kind, value) == ("op", "("):
            inner = self.pipe()
            self.take(")")
            return inner
        if (kind, value) == ("op", "["):
            items = self.items("]")
            return lambda: [item() for item in items]
        if (kind, value) == ("op", "#"):
            if not self.predicates:
                raise ExprError("unexpected # outside a predicate")
            return lambda: self.elements[-1]
        if kind != "name":
            raise ExprError(f"unexpected {value!r}")
        if value == "sprig" and self.at("."):
            self.take()
            name = self.take()[1]
            if name not in SPRIG or not self.at("("):
                raise NotSupported(f"function sprig.{name}() is not supported by the local runner")
            return self._sprig(name)
        if self.at("("):
            return self._call(value)
        if value not in self.env:
            raise ExprError(f"unknown name {value}")
        env = self.env
        return lambda: env[value]

    def _sprig(self, name: str) -> Callable[[], Any]:
        self.take("(")
        args = self.items(")")
        return lambda: _apply(f"sprig.{name}", SPRIG[name], [arg() for arg in args])

    def items(self, end: str) -> list[Callable[[], Any]]:
        """Comma-separated values up to `end` (a list's or a call's), `end` taken."""
        items = []
        while not self.at(end):
            items.append(self.pipe())
            if not self.at(end):
                self.take(",")
        self.take(end)
        return items


def _member(container: Any, key: Any) -> Any:
    """`a.b`, `a['b']`, `a[0]`: a map's member (nil when missing) or a list's element."""
    if isinstance(container, Mapping):
        return container.get(key)
    if isinstance(container, (list, str)) and is_number(key):
        index = int(key)
        if not -len(container) <= index < len(container):
            raise ExprError(f"index out of range: {index} (array length {len(container)})")
        return container[index]
    if container is None:
        return None
    raise ExprError(f"cannot fetch {key!r} from {type(container).__name__}")


def _apply(name: str, function: Callable[..., Any], args: list[Any]) -> Any:
    try:
        return function(*args)
    except ExprError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise ExprError(f"{name}(): {exc}") from None


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
