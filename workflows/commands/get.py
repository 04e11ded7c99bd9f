"""`trainyard get RUN`: one run's steps and their status, as `argo get` shows them."""

from __future__ import annotations

import argparse

from workflows.commands import run_target


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("get", help="show a run's steps and their status (local or on the Argo server)",
                       description="Show a run as `argo get` does: its phase, start, duration, and each step with its "
                       "status, duration and message. A running local run shows the steps done so far.")
    run_target.add_arguments(p, "the run to show")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folder = run_target.local_run(args)
    if folder is not None:
        from workflows.local.status import phase_of, read_status

        status = read_status(folder) or {}
        rows = [(n["displayName"], n["phase"], n.get("startedAt"), n.get("finishedAt"), n.get("message") or "")
                for n in status.get("nodes", [])[1:]]  # the first node is the DAG itself
        run_target.print_table(folder.name, phase_of(folder), status.get("startedAt"), status.get("finishedAt"), "", rows)
        return 0
    from workflows import argo_runs

    workflow = argo_runs.get(run_target.argo_client(args), args.run)
    status = workflow.status
    nodes = sorted((status.nodes or {}).values() if status else [], key=lambda n: _time(n.started_at))
    rows = [(n.display_name or n.name, n.phase or "Pending", _time(n.started_at) or None, _time(n.finished_at) or None,
             n.message or "") for n in nodes if n.type in ("Pod", "Skipped", "Retry")]
    run_target.print_table(args.run, (status.phase if status else None) or "Pending",
                           _time(status.started_at) if status else None, _time(status.finished_at) if status else None,
                           (status.message if status else "") or "", rows)
    return 0


def _time(value: object) -> str:
    moment = getattr(value, "root", value)  # Hera wraps timestamps in a Time model
    return moment.isoformat() if hasattr(moment, "isoformat") else ""
