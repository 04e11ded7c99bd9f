"""YAML from users (config files, `--set` values) without alias bombs.

PyYAML shares one Python object per anchor, so `a: &a [x, x]`, `b: &b [*a, *a]`, ... parses at
once, but anything that walks the result (validation, a dump, an error message quoting it) visits
every path: 2**depth nodes. The document's size with every alias expanded is counted on the node
graph first (linear in the text) and a document over the limit is refused before it is built.
"""

from __future__ import annotations

from typing import Any

import yaml

# Far above any real config (the full default config is ~100 nodes), far below a slow walk.
MAX_NODES = 100_000


class YAMLTooLarge(yaml.YAMLError):
    """The document expands (through aliases) to more than MAX_NODES nodes."""


def load(text: str, max_nodes: int = MAX_NODES) -> Any:
    """`yaml.safe_load(text)`, refusing documents that expand beyond `max_nodes` nodes."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node)  # raises YAMLTooLarge on a recursive alias
        if expanded > max_nodes:
            raise YAMLTooLarge(
                f"expands to {expanded:.3g} nodes through aliases (limit {max_nodes}); "
                "an alias bomb? write the values out instead"
            )
        return loader.construct_document(node)
    except RecursionError:  # `[[[[...` thousands deep: the composer recurses per level
        raise YAMLTooLarge("nested too deeply; a config is a few levels of sections and values") from None
    finally:
        loader.dispose()


def _expanded_size(root: yaml.Node) -> int:
    # Post-order over the graph with one memo entry per node: linear in the text, while the
    # number it computes is the (possibly exponential) size of the expanded tree.
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # entered, children not done: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        kids = children(node)
        if children_done or not kids:
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in kids)
            open_nodes.discard(id(node))
            continue
        if id(node) in open_nodes or any(id(child) in open_nodes for child in kids):
            # `&a [*a]`: an alias inside its own anchor is an infinite document.
            raise YAMLTooLarge("an alias refers to the anchor it is inside (a recursive alias); "
                               "write the values out instead")
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in kids if id(child) not in sizes)
    return sizes[id(root)]


def children(node: yaml.Node) -> list[yaml.Node]:
    """A YAML node's direct children (a mapping's keys and values), for walks over the node graph."""
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
