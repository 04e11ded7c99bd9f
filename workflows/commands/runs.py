"""`trainyard runs`: the pipeline runs and their outcomes, from the `pipeline_runs` table."""

from __future__ import annotations

import argparse
from pathlib import Path

LOCAL_DATABASE = Path("runs/trainyard.sqlite")  # where `trainyard run --local` keeps its database


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list pipeline runs and their outcomes (newest first)",
                       description="Every pipeline run the exit handler recorded: status, dataset version, duration, "
                       "the model it registered and whether that model was promoted. The database is "
                       "TRAINYARD_DATABASE_URL when set, else the local runs folder's SQLite file.")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"),
                   help="the local runs folder (`run --local --output`), default ./runs")
    p.add_argument("--limit", type=int, default=20, help="show at most this many runs (default 20)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from steps.db import URL_ENV, Database
    from steps.errors import InputError

    url = os.environ.get(URL_ENV)
    live = _unfinished(args.runs_dir)
    if not url:
        database = args.runs_dir / "trainyard.sqlite"
        if not database.is_file() and not live:
            raise InputError(f"{database}: no local database; give --runs-dir (the folder of `run --local --output`) "
                             f"or set {URL_ENV}")
        url = f"sqlite:///{database.resolve()}" if database.is_file() else ""
    rows = []
    if url:
        db = Database(url)
        db.migrate()
        with db.transaction() as tx:
            rows = tx.query(
                "SELECT run_id, status, dataset_version, started_at, duration_seconds, model_id, promoted "
                "FROM pipeline_runs ORDER BY started_at DESC, id DESC LIMIT ?", (max(args.limit, 1),))
    recorded = {row[0] for row in rows}
    # A run's row is written by its exit handler, at its end: a run still going (or one whose runner
    # was killed before that) is known only by its folder's status.json.
    rows = [row for row in live if row[0] not in recorded] + list(rows)
    if not rows:
        print("no pipeline runs recorded yet")
        return 0
    print(f"{'run':<28} {'status':<12} {'dataset':<14} {'started':<21} {'minutes':>7}  model (promoted)")
    for run_id, status, dataset, started, seconds, model_id, promoted in rows[: max(args.limit, 1)]:
        minutes = f"{seconds / 60:7.1f}" if isinstance(seconds, int | float) else "      -"
        verdict = {1: " (promoted)", 0: " (not promoted)"}.get(promoted, "")
        if status == "Succeeded" and not model_id:
            # Nothing new to train on: train, evaluate, select and test were skipped, as the nightly does.
            status, model_id = "Skipped", "- (no new data)"
        print(f"{run_id:<28} {status:<12} {dataset or '-':<14} {str(started)[:19]:<21} {minutes}  {model_id or '-'}{verdict}")
    return 0


def _unfinished(runs_dir: Path) -> list[tuple]:
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
