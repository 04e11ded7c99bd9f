"""`python -m steps.notify`: the exit handler. Records the run's outcome, then posts a summary."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from steps.cli import add_config_arguments, run_cli
from steps.config import Config, load_config

WEBHOOK_ENV = "TRAINYARD_WEBHOOK_URL"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.notify",
        description="Exit handler of the pipeline: record the run's outcome in the pipeline_runs table and, when a "
        f"webhook URL is given (--webhook-url or env {WEBHOOK_ENV}), POST a JSON summary to it. A webhook that "
        "fails is a warning: the outcome is already stored.",
    )
    parser.add_argument("--run-id", required=True, help="the workflow name ({{workflow.name}})")
    parser.add_argument("--status", required=True, help="the workflow phase ({{workflow.status}})")
    parser.add_argument("--namespace", default="", help="the workflow namespace, for the UI link")
    parser.add_argument("--failures", default="", help="{{workflow.failures}}: JSON list of failed nodes")
    parser.add_argument("--started-at", default="", help="{{workflow.creationTimestamp}} (RFC 3339)")
    parser.add_argument("--duration", default="", help="{{workflow.duration}} in seconds")
    parser.add_argument("--webhook-url", default="", help=f"where to POST the summary (default: env {WEBHOOK_ENV})")
    parser.add_argument("--ui-base-url", default="", help="Argo UI base URL, e.g. https://argo.example.com")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config, notes = _config(args)

    from steps.db import Database, resolve_url
    from steps.errors import ExternalError
    from steps.notify.outcome import (
        RunOutcome,
        finished_at,
        parse_duration,
        parse_failures,
        record_outcome,
        with_stored_results,
    )
    from steps.notify.webhook import payload, post, summary_text

    duration = parse_duration(args.duration)
    started = args.started_at or finished_at("", None)
    ui_url = None
    if args.ui_base_url and args.namespace:
        ui_url = f"{args.ui_base_url.rstrip('/')}/workflows/{args.namespace}/{args.run_id}"
    failures, retries = parse_failures(args.failures)
    outcome = RunOutcome(
        run_id=args.run_id, status=args.status, started_at=started, finished_at=finished_at(started, duration),
        duration_seconds=duration, failures=failures, retries=retries, ui_url=ui_url, notes=notes,
        partial=args.status == "Succeeded" and bool(failures),
    )
    db = Database(resolve_url(config.database.url))
    db.migrate()
    outcome = with_stored_results(outcome, db)
    record_outcome(db, outcome)
    print(summary_text(outcome), flush=True)

    url = args.webhook_url or os.environ.get(WEBHOOK_ENV, "")
    if url:
        try:
            status = post(url, payload(outcome))
            print(f"notify: summary posted (HTTP {status})", flush=True)
        except ExternalError as exc:
            print(f"notify: warning: {exc}", file=sys.stderr, flush=True)
    return 0


def _config(args: argparse.Namespace) -> tuple[Config, list[str]]:
    """The run's config, or the closest one that loads: the exit handler must record the outcome of
    a run whose overrides or config file are wrong (that mistake is what it reports)."""
    from steps.errors import TrainyardError

    attempts = [(args.config, args.overrides, args.set_list), (args.config, [], ""), (None, [], "")]
    notes: list[str] = []
    for config_file, overrides, set_list in attempts:
        try:
            return load_config(config_file, overrides, set_list), notes
        except TrainyardError as exc:
            notes.append(f"config not used: {exc}")
            print(f"notify: warning: {exc}; recording the outcome with a fallback config", file=sys.stderr, flush=True)
    raise AssertionError("the built-in defaults always load")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(run_cli(main))
