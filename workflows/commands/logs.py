"""`trainyard logs RUN [STEP] [-f]`: a run's step logs, as `argo logs` prints them."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from workflows.commands import run_target

POLL_SECONDS = 0.5


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("logs", help="print a run's step logs (local or on the Argo server); -f follows them",
                       description="Print the logs of a run's steps, every line as `<step>: <line>` (on a cluster "
                       "`<pod>: <line>`, as `argo logs`). STEP limits them to one step (a fan-out step: all its "
                       "pods). --follow keeps printing until the run ends.")
    run_target.add_arguments(p, "the run")
    p.add_argument("step", nargs="?", metavar="STEP", help="one step, e.g. train or evaluate (default: every step)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until the run ends")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folder = run_target.local_run(args)
    if folder is not None:
        return _local(folder, args.step, args.follow)
    from workflows import argo_runs

    client = run_target.argo_client(args)
    pods = argo_runs.pods_of_step(argo_runs.get(client, args.run), args.step) if args.step else [""]
    for pod in pods:
        argo_runs.logs(client, args.run, pod, args.follow)
    return 0


def _local(folder: Path, step: str | None, follow: bool) -> int:
    from steps.errors import InputError
    from workflows.local.status import phase_of

    offsets: dict[Path, int] = {}
    while True:
        files = _log_files(folder, step)
        if step and not files and phase_of(folder) != "Running":
            known = dict.fromkeys(label.split("(", 1)[0] for _, label in _log_files(folder, None))
            raise InputError(f"{folder.name}: no log of a step {step!r} (steps with logs: {', '.join(known) or 'none'})")
        for path, label in files:
            with path.open(encoding="utf-8", errors="replace") as file:
                file.seek(offsets.get(path, 0))
                for line in iter(file.readline, ""):
                    if not line.endswith("\n") and follow:
                        break  # half a line: the rest comes with the next poll
                    offsets[path] = file.tell()
                    print(f"{label}: {line.rstrip()}", flush=True)
        if not follow or phase_of(folder) != "Running":
            return 0
        time.sleep(POLL_SECONDS)


def _log_files(folder: Path, step: str | None) -> list[tuple[Path, str]]:
    """Each step's log.txt, in the order the steps started (a fan-out's children as `step(i)`),
    the exit handler last."""
    from workflows.local.status import read_status

    nodes = (read_status(folder) or {}).get("nodes") or [{}]
    order = [str(name).split(".", 1)[-1] for name in nodes[0].get("children", [])]  # `<run>.<task>`, as visited
    found = [(path, path.parent.name) for path in folder.glob("*/log.txt")]
    found += [(path, f"{path.parent.parent.name}({path.parent.name})") for path in folder.glob("*/*/log.txt")
              if path.parent.name.isdigit()]

    def rank(item: tuple[Path, str]) -> tuple[int, int]:
        task, _, index = item[1].partition("(")
        position = order.index(task) if task in order else len(order)
        return (position, int(index.rstrip(")") or 0))

    return sorted(((p, label) for p, label in found if step is None or label.split("(", 1)[0] == step), key=rank)
