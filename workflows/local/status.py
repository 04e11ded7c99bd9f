"""`<run>/status.json`: a local run as it stands, written by the runner whenever a task starts or ends.

It is the local counterpart of a Workflow's `status` on the cluster: the workflow's phase
(Running until the runner ends), the runner's pid (to stop it, and to tell a running run from one
whose runner was killed), every node with its phase, times and message, and each finished task's
output parameters and artifact folders (what `trainyard retry` keeps of the succeeded ones).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from workflows.local.nodes import Node, all_nodes, rfc3339

STATUS_FILE = "status.json"
RUN_FILE = "run.json"  # how the run was started (`trainyard run`'s arguments), written by workflows/local/run.py
_LOCK = threading.Lock()  # tasks of a fan-out start on worker threads


def write_status(run_dir: Path, phase: str, root: Node, results: Mapping[str, Any]) -> None:
    status = {
        "phase": phase,
        "pid": os.getpid(),
        "startedAt": rfc3339(root.started_at),
        "finishedAt": rfc3339(datetime.now(timezone.utc)) if phase != "Running" else None,
        "nodes": [{"name": n.name, "displayName": n.display_name, "templateName": n.template_name, "phase": n.phase,
                   "startedAt": rfc3339(n.started_at), "finishedAt": rfc3339(n.finished_at), "message": n.message,
                   "children": [c.name for c in n.children]} for n in all_nodes(root)],
        "tasks": {name: {"status": r.status, "seconds": round(r.seconds, 1), "parameters": r.parameters,
                         "artifacts": {k: str(v) for k, v in r.artifacts.items()},
                         "artifact_keys": r.artifact_keys, "log": str(r.log) if r.log else None}
                  for name, r in dict(results).items()},
    }
    with _LOCK:
        partial = run_dir / f".{STATUS_FILE}.partial"
        partial.write_text(json.dumps(status, indent=1))
        partial.replace(run_dir / STATUS_FILE)  # a reader never sees half a file


def read_status(run_dir: Path) -> dict[str, Any] | None:
    try:
        status = json.loads((run_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def phase_of(run_dir: Path) -> str:
    """The run's phase; Running only while its runner lives ("Interrupted" when it was killed)."""
    status = read_status(run_dir)
    if status is None:
        return "Unknown"
    phase = str(status.get("phase", "Unknown"))
    if phase == "Running" and not runner_alive(status):
        return "Interrupted"
    return phase


def runner_alive(status: Mapping[str, Any]) -> bool:
    """Whether the process that wrote `status` still runs a trainyard command (not a reused pid)."""
    pid = status.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True  # no /proc here: a live pid is the best we know
    return b"trainyard" in command or b"pytest" in command or b"workflows" in command
