"""What `trainyard get|logs|stop|retry RUN` act on: a local run folder, or a workflow on an Argo server.

RUN is a local run when `<runs-dir>/RUN` holds a run (`@latest`: the newest one there, as
`argo get @latest`); otherwise it is a workflow name on the Argo server that `trainyard submit`
talks to (--server / ARGO_SERVER, namespace and token as there).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from steps.errors import InputError


def add_arguments(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("run", metavar="RUN", help=f"{what}: a local run (a folder of --runs-dir, or @latest) or a workflow "
                   "on the Argo server")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="the local runs folder (default ./runs)")
    add_cluster_arguments(p)


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    """Where the Argo server is, as for `trainyard submit`."""
    cluster = p.add_argument_group("cluster runs (as for `trainyard submit`)")
    cluster.add_argument("--server", help="Argo server, host:port or URL (default: ARGO_SERVER)")
    cluster.add_argument("-n", "--namespace", help="namespace (default: ARGO_NAMESPACE, else the kubeconfig context's)")
    cluster.add_argument("--token", help="bearer token (default: ARGO_TOKEN, else the kubeconfig's)")
    cluster.add_argument("--insecure-skip-verify", action="store_true", help="do not verify the server's TLS certificate")


def local_run(args: argparse.Namespace) -> Path | None:
    """The local run folder RUN names, or None when it names none (then it is a cluster run)."""
    # Here, not at the top: importing the local runner costs every other command a tenth of a second.
    from workflows.local.status import RUN_FILE, STATUS_FILE

    runs = args.runs_dir
    if args.run == "@latest":
        found = sorted((p for p in runs.glob("local-*") if (p / STATUS_FILE).is_file()), key=lambda p: p.name) \
            if runs.is_dir() else []
        if not found:
            raise InputError(f"{runs}: no local run yet (give --runs-dir, the folder of `run --local --output`)")
        return found[-1]
    if "/" in args.run or args.run in (".", "..") or args.run.startswith("-"):
        raise InputError(f"{args.run!r}: give a run's name (e.g. local-20260101-120000), not a path")
    folder = runs / args.run
    if (folder / STATUS_FILE).is_file() or (folder / RUN_FILE).is_file():
        return folder
    if args.run.startswith("local-") and folder.is_dir():
        raise InputError(f"{folder}: a run of an older trainyard, without status.json; only its log files remain "
                         f"({folder}/<step>/log.txt)")
    return None


def argo_client(args: argparse.Namespace) -> Any:
    """The Argo server client of `trainyard submit`; an error that says what RUN was looked up as."""
    import os

    from workflows.submit import ArgoClient, ArgoServer

    if not (args.server or os.environ.get("ARGO_SERVER")):
        raise InputError(f"{args.run}: no local run of that name in {args.runs_dir}, and no Argo server to ask "
                         "(--server or ARGO_SERVER); `trainyard runs` lists the local runs")
    return ArgoClient(ArgoServer.resolve(args.server, args.namespace, args.token, args.insecure_skip_verify))


MARKS = {"Succeeded": "✔", "Failed": "✖", "Error": "⚠", "Running": "●", "Pending": "◷", "Skipped": "○",
         "Omitted": "○", "Interrupted": "✖"}


def print_table(name: str, phase: str, started: str | None, finished: str | None, message: str,
                rows: list[tuple[str, str, str | None, str | None, str]]) -> None:
    """`argo get`'s layout: the workflow's facts, then one line per step (name, status, duration, message)."""
    print(f"Name:      {name}")
    print(f"Status:    {phase}")
    if message:
        print(f"Message:   {message}")
    if started:
        print(f"Started:   {started}")
    if finished:
        print(f"Finished:  {finished}")
    if started:
        print(f"Duration:  {_duration(started, finished)}")
    print()
    width = max([len("STEP"), *(len(row[0]) for row in rows)]) + 2
    print(f"   {'STEP':<{width}} {'STATUS':<12} {'DURATION':>9}  MESSAGE")
    for step, status, start, end, note in rows:
        duration = _duration(start, end) if start else "-"
        print(f" {MARKS.get(status, ' ')} {step:<{width}} {status:<12} {duration:>9}  {note}")


def _duration(started: str, finished: str | None) -> str:
    try:
        begin = datetime.fromisoformat(started.replace("Z", "+00:00"))
        end = datetime.fromisoformat(finished.replace("Z", "+00:00")) if finished else datetime.now(timezone.utc)
    except ValueError:
        return "-"
    seconds = max(int((end - begin).total_seconds()), 0)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
