"""`trainyard runs`: the pipeline runs and their outcomes, local or on the Argo server, newest first.

Locally: the `pipeline_runs` table the exit handler fills at a run's end, plus the runs still
going (their folders' status.json). On a cluster (`--server` or ARGO_SERVER): the workflows of the
pipeline's templates as `argo list` shows them, with the model and promotion from the database
when TRAINYARD_DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from workflows.commands import run_target

TEMPLATE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")  # a Kubernetes object name (RFC 1123)
Row = tuple[str, str, Any, Any, Any, Any, Any]  # run, status, dataset, started, seconds, model, promoted


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list pipeline runs and their outcomes, local or on the Argo server (newest first)",
                       description="Every pipeline run: status, dataset version, start, duration, the model it "
                       "registered and whether that model was promoted. Local runs come from the runs folder (and "
                       "TRAINYARD_DATABASE_URL when set); with --server or ARGO_SERVER, the workflows of the "
                       "pipeline, sweep and nightly templates on the Argo server, as `argo list` shows them.")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"),
                   help="the local runs folder (`run --local --output`), default ./runs")
    p.add_argument("--limit", type=int, default=20, help="show at most this many runs (default 20)")
    p.add_argument("--local", action="store_true", help="list the local runs even when ARGO_SERVER is set")
    p.add_argument("--template", action="append", metavar="NAME",
                   help="cluster: list the runs of this WorkflowTemplate (repeatable; default: the pipeline's and "
                   "the sweep's, which the nightly runs too)")
    run_target.add_cluster_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    limit = max(args.limit, 1)
    if not args.local and (args.server or os.environ.get("ARGO_SERVER")):
        rows = _cluster_rows(args, limit)
    else:
        rows = _local_rows(args, limit)
    if not rows:
        print("no pipeline runs recorded yet")
        return 0
    _print(rows[:limit])
    return 0


def _local_rows(args: argparse.Namespace, limit: int) -> list[Row]:
    from steps.db import URL_ENV
    from steps.errors import InputError

    url = os.environ.get(URL_ENV)
    live = _unfinished(args.runs_dir)
    if not url:
        database = args.runs_dir / "trainyard.sqlite"
        if not database.is_file() and not live:
            raise InputError(f"{database}: no local database; give --runs-dir (the folder of `run --local --output`), "
                             f"set {URL_ENV}, or --server for the runs on an Argo server")
        url = f"sqlite:///{database.resolve()}" if database.is_file() else ""
    rows = _recorded(url, limit) if url else []
    recorded = {row[0] for row in rows}
    # A run's row is written by its exit handler, at its end: a run still going (or one whose runner
    # was killed before that) is known only by its folder's status.json.
    return [row for row in live if row[0] not in recorded] + rows


def _cluster_rows(args: argparse.Namespace, limit: int) -> list[Row]:
    from steps.db import URL_ENV
    from steps.errors import InputError
    from workflows import argo_runs
    from workflows.pipeline import PIPELINE_NAME
    from workflows.sweep import SWEEP_NAME

    args.run = "runs"  # what run_target's messages call the lookup
    client = run_target.argo_client(args)
    templates = args.template or [PIPELINE_NAME, SWEEP_NAME]
    for name in templates:  # it goes into a label selector: a name, never selector syntax
        if not TEMPLATE_NAME.fullmatch(name) or len(name) > 253:
            raise InputError(f"--template {name!r}: not a WorkflowTemplate name (lower-case letters, digits, '-' "
                             "and '.'), e.g. --template trainyard-pipeline")
    workflows, more = argo_runs.list_runs(client, templates)
    print(f"runs of {', '.join(templates)} on {client.server.shown}, namespace {client.server.namespace}")
    if more:
        print(f"(more than {len(workflows):,} workflows: the newest of the first {len(workflows):,} the server listed; "
              "`argo list` with a --prefix or `argo archive list` finds the rest)")
    # The model and the promotion are in the database, which the exit handler writes at each run's end.
    outcomes = {row[0]: row for row in _recorded(os.environ[URL_ENV], limit * 5)} if os.environ.get(URL_ENV) else {}
    rows = []
    for workflow in workflows[:limit]:
        name = workflow.metadata.name
        status = workflow.status
        phase = (status.phase if status else None) or "Pending"
        started, finished = _time(status.started_at if status else None), _time(status.finished_at if status else None)
        seconds = (finished - started).total_seconds() if started and finished else None
        known = outcomes.get(name)
        if known and phase == "Succeeded":
            rows.append((name, known[1], known[2], started or known[3], seconds, known[5], known[6]))
        else:
            # Without the database's row the model is unknown ("-"), not missing: never shown as skipped.
            rows.append((name, phase, known[2] if known else None, started, seconds, "-", None))
    return rows


def _recorded(url: str, limit: int) -> list[Row]:
    from steps.db import Database

    db = Database(url)
    db.migrate()
    with db.transaction() as tx:
        return [tuple(row) for row in tx.query(
            "SELECT run_id, status, dataset_version, started_at, duration_seconds, model_id, promoted "
            "FROM pipeline_runs ORDER BY started_at DESC, id DESC LIMIT ?", (limit,))]


def _print(rows: list[Row]) -> None:
    width = max(28, *(len(row[0]) + 1 for row in rows))
    print(f"{'run':<{width}} {'status':<12} {'dataset':<14} {'started':<21} {'minutes':>7}  model (promoted)")
    for run_id, status, dataset, started, seconds, model_id, promoted in rows:
        minutes = f"{seconds / 60:7.1f}" if isinstance(seconds, int | float) else "      -"
        verdict = {1: " (promoted)", 0: " (not promoted)", True: " (promoted)", False: " (not promoted)"}.get(promoted, "")
        if status == "Succeeded" and not model_id:
            # Nothing new to train on: train, evaluate, select and test were skipped, as the nightly does.
            status, model_id = "Skipped", "- (no new data)"
        shown = str(started).replace("T", " ")[:19] if started else "-"
        print(f"{run_id:<{width}} {status:<12} {dataset or '-':<14} {shown:<21} {minutes}  {model_id or '-'}{verdict}")


def _time(value: object) -> datetime | None:
    moment = getattr(value, "root", value)  # Hera wraps timestamps in a Time model
    return moment if isinstance(moment, datetime) else None


def _unfinished(runs_dir: Path) -> list[Row]:
    """Local runs without a finished status: Running while their runner lives, else Interrupted."""
    from workflows.local.status import phase_of, read_status

    rows = []
    for folder in sorted(runs_dir.glob("local-*"), reverse=True) if runs_dir.is_dir() else []:
        phase = phase_of(folder)
        if phase not in ("Running", "Interrupted"):
            continue
        status = read_status(folder) or {}
        record = next((t for name, t in status.get("tasks", {}).items() if name == "record"), {})
        started = str(status.get("startedAt") or "").replace("T", " ").rstrip("Z")
        rows.append((folder.name, phase, (record.get("parameters") or {}).get("dataset-version"), started,
                     None, None, None))
    return rows
