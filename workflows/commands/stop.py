"""`trainyard stop RUN`: stop a run as `argo stop` does (the step gets SIGTERM, the exit handler runs)."""

from __future__ import annotations

import argparse

from workflows.commands import run_target


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stop", help="stop a running run (local or on the Argo server), as argo stop",
                       description="Stop a run as `argo stop` does: the running step gets SIGTERM (SIGKILL after its "
                       "grace period), nothing new starts, and the exit handler still runs and records the outcome.")
    run_target.add_arguments(p, "the run to stop")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folder = run_target.local_run(args)
    if folder is not None:
        import os
        import signal

        from steps.errors import InputError
        from workflows.local.status import phase_of, read_status

        phase = phase_of(folder)
        if phase != "Running":
            raise InputError(f"{folder.name} is not running ({phase}); nothing to stop")
        status = read_status(folder) or {}
        # The runner takes SIGTERM as Ctrl-C: argo stop's semantics (workflows/local/runner.py `stop`).
        os.kill(int(status["pid"]), signal.SIGTERM)
        print(f"{folder.name} stopping: the running step gets SIGTERM, the exit handler still runs "
              f"(`trainyard logs {folder.name} -f` to watch)")
        return 0
    from workflows import argo_runs

    argo_runs.stop(run_target.argo_client(args), args.run)
    print(f"{args.run} stopped")
    return 0
