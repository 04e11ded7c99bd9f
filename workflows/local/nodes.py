"""Argo's node records for a local run, and the workflow variables the exit handler gets from them.

A DAG task is one node named `<workflow>.<task>`; a task with a retryStrategy is a Retry node of
that name whose attempts are `<workflow>.<task>(0)`, `(1)`, ... (controller/operator.go
`executeTemplate`). The DAG itself is the node named after the workflow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

FAILED_OR_ERROR = ("Failed", "Error")
# operator.go `operate`: the workflow phase from the entry node's phase.
WORKFLOW_PHASE = {"Succeeded": "Succeeded", "Skipped": "Succeeded", "Omitted": "Succeeded",
                  "Failed": "Failed", "Error": "Error"}
MAX_POD_PREFIX = 253 - 10  # util/pod_name.go: maxK8sResourceNameLength - k8sNamingHashLength


@dataclass
class Node:
    name: str
    display_name: str
    template_name: str
    phase: str = "Running"
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: str | None = None
    children: list[Node] = field(default_factory=list)

    def finish(self, phase: str, message: str = "") -> Node:
        self.phase, self.message = phase, message
        self.finished_at = datetime.now(timezone.utc)
        return self

    @property
    def seconds(self) -> float:
        if not self.started_at:
            return 0.0
        return ((self.finished_at or datetime.now(timezone.utc)) - self.started_at).total_seconds()


def _fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def pod_name(workflow: str, node: str, template: str) -> str:
    """util/pod_name.go `GeneratePodName`, POD_NAMES=v2 (the default)."""
    if workflow == node:
        return workflow
    prefix = f"{workflow}-{template}" if template else workflow
    return f"{prefix[:MAX_POD_PREFIX - 1]}-{_fnv32a(node)}"


def rfc3339(moment: datetime | None) -> str | None:
    """metav1.Time's JSON form: UTC to the second, or null when unset."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _go_json_string(text: str) -> str:
    # encoding/json: escapes " \ and control characters, and <, >, & (HTML-safe by default).
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or ch in "<>&" or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_json(value: object) -> str:
    """json.Marshal of lists, string-keyed dicts (in the given field order), strings and null."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, list):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_go_json_string(k)}:{go_json(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
                  '"': '\\"', "\\": "\\\\"}


def go_quote(text: str) -> str:
    """strconv.Quote: a double-quoted Go string literal; printable characters stay as they are."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif ch == " " or ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def all_nodes(root: Node) -> list[Node]:
    nodes, stack = [], [root]
    while stack:
        node = stack.pop(0)
        nodes.append(node)
        stack.extend(node.children)
    return nodes


def failures(workflow: str, root: Node) -> str:
    """`{{workflow.failures}}` as operator.go `operate` builds it: every Failed or Error node of the
    run (the DAG, a Retry node and each failed attempt, even when a later attempt succeeded), as
    `strconv.Quote(json.Marshal(failedNodeStatus list))`. A clean run gives `"null"` with its quotes.

    Argo walks a Go map, so its order is arbitrary; ours is by finishing time.
    """
    failed = [n for n in all_nodes(root) if n.phase in FAILED_OR_ERROR]
    failed.sort(key=lambda n: (n.finished_at or datetime.max.replace(tzinfo=timezone.utc), n.name))
    records = [{"displayName": n.display_name, "message": n.message, "templateName": n.template_name,
                "phase": n.phase, "podName": pod_name(workflow, n.name, n.template_name),
                "finishedAt": rfc3339(n.finished_at)} for n in failed]
    return go_quote(go_json(records or None))


def duration(started: datetime, now: datetime | None = None) -> str:
    """`{{workflow.duration}}`: operator.go `setGlobalRuntimeParameters`, fmt "%f" of the seconds."""
    return f"{((now or datetime.now(timezone.utc)) - started).total_seconds():f}"
