"""Reading manifests the way Kubernetes' YAML decoder reads them, remembering lines.

Every mapping and list read is noted with the line of each of its keys and items, so that a
finding's path (`spec.templates[name=main]...`) can be turned back into a line of the file.
A document whose aliases expand to far more nodes than it holds (a "billion laughs" bomb) or
that refers to itself is refused before anything walks it.

PyYAML follows YAML 1.1 further than go-yaml does: it turns `2024-01-01` into a date and
`1:30` into the base-60 number 90. Kubernetes keeps both as strings, so this loader does too;
otherwise a valid manifest would be reported for a wrong type. Duplicate keys are an error
here, as they are for `kubectl` and `argo`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from steps.safe_yaml import children

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_DROPPED = {"tag:yaml.org,2002:timestamp", _INT, _FLOAT}


MAX_EXPANDED_NODES = 2_000_000  # far above any real workflow; a bomb needs billions
ALIAS_GROWTH = 10  # beyond 100,000 values, aliases may at most multiply the document tenfold
_SMALL = 100_000


class AliasBombError(yaml.YAMLError):
    """A document whose aliases expand beyond reason, or refer to themselves."""

    def __init__(self, message: str, mark: Any = None) -> None:
        super().__init__(message)
        self.problem, self.problem_mark = message, mark


# libyaml's parser when PyYAML has it: the pure-Python one takes seconds for a large DAG.
_BASE: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ManifestLoader(_BASE):  # type: ignore[misc,valid-type]
    """SafeLoader without timestamps or base-60 numbers, and strict about duplicate keys; it
    records lines in `lines` (id of a dict or list -> its line and its keys' or items' lines)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.lines: dict[int, tuple[int, Any]] = {}

    def construct_document(self, node: yaml.Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        data = super().construct_object(node, deep=deep)
        if isinstance(data, dict) and isinstance(node, yaml.MappingNode):
            keys = {str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
            self.lines[id(data)] = (node.start_mark.line + 1, keys)
        elif isinstance(data, list) and isinstance(node, yaml.SequenceNode):
            self.lines[id(data)] = (node.start_mark.line + 1, [item.start_mark.line + 1 for item in node.value])
        return data

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found duplicate key {key_node.value[:40]!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED]
    for first, resolvers in _BASE.yaml_implicit_resolvers.items()
}
ManifestLoader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
ManifestLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph that expands to more than MAX_EXPANDED_NODES nodes or has a cycle."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        kids = children(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in kids)
            if sizes[key] > MAX_EXPANDED_NODES:
                raise AliasBombError(
                    f"the document expands to more than {MAX_EXPANDED_NODES:,} values through its aliases "
                    "(a YAML alias bomb?): refused", node.start_mark)
            continue
        if key in open_nodes:
            raise AliasBombError("an alias refers to the node that contains it: refused", node.start_mark)
        open_nodes.add(key)
        stack.append((node, True))
        for child in kids:
            if id(child) in open_nodes:
                raise AliasBombError("an alias refers to the node that contains it: refused", child.start_mark)
            stack.append((child, False))
    expanded = sizes.get(id(root), 0)
    if expanded > _SMALL and expanded > ALIAS_GROWTH * len(sizes):
        raise AliasBombError(
            f"the document's aliases expand its {len(sizes):,} values to {expanded:,} "
            "(a YAML alias bomb?): refused", root.start_mark)


def load_documents(text: str) -> tuple[list[Any], dict[int, tuple[int, Any]], yaml.YAMLError | None]:
    """The documents of a YAML stream, their line table, and the error that stopped reading, if
    any (the documents before it are kept)."""
    loader = ManifestLoader(text)
    documents: list[Any] = []
    error: yaml.YAMLError | None = None
    try:
        while loader.check_data():
            documents.append(loader.get_data())
    except yaml.YAMLError as problem:
        error = problem
    except RecursionError:
        error = AliasBombError("the document is nested too deeply to read: refused")
    finally:
        loader.dispose()
    return documents, loader.lines, error


_SEGMENT = re.compile(r'\.?([A-Za-z_$][A-Za-z0-9_$-]*)|\["((?:[^"\\]|\\.)*)"\]|\[name=([^\]]*)\]|\[(\d+)\]')


def line_of(document: Any, path: str, lines: dict[int, tuple[int, Any]]) -> int | None:
    """The line of the deepest value of `path` (as findings.py writes paths) found in `document`."""
    value, line = document, None
    if id(value) in lines:
        line = lines[id(value)][0]
    position = 0
    while position < len(path):
        match = _SEGMENT.match(path, position)
        if not match:
            break
        position = match.end()
        key, quoted, name, index = match.groups()
        entry = lines.get(id(value))
        if isinstance(value, dict) and (key is not None or quoted is not None):
            wanted = key if key is not None else quoted
            if wanted not in value:
                break
            if entry:
                line = entry[1].get(wanted, line)
            value = value[wanted]
        elif isinstance(value, list) and (name is not None or index is not None):
            position_in_list = int(index) if index is not None else next(
                (i for i, item in enumerate(value) if isinstance(item, dict) and item.get("name") == name), None)
            if position_in_list is None or position_in_list >= len(value):
                break
            if entry:
                line = entry[1][position_in_list]
            value = value[position_in_list]
        else:
            break
    return line
