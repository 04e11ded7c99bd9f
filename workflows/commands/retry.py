"""`trainyard retry RUN`: run a failed run's failed steps again, keeping what succeeded (argo retry)."""

from __future__ import annotations

import argparse

from workflows.commands import run_target
from workflows.commands.run import parse_params


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retry", help="rerun a failed run from its failed steps (local or on the Argo server)",
                       description="Retry a failed, errored or stopped run as `argo retry` does: the succeeded steps "
                       "are kept with their outputs, the others run again in the same run, and the exit handler "
                       "records the new outcome. A local retry runs in this terminal, like `run --local`.")
    run_target.add_arguments(p, "the run to retry")
    p.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                   help="a workflow parameter to change for the steps that run again (repeatable), as `argo retry -p`")
    p.add_argument("--parallel", type=int, metavar="N", help="local: steps at once (default: the run's own)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folder = run_target.local_run(args)
    if folder is not None:
        from workflows.local.resume import retry_local

        return 0 if retry_local(folder, args.parallel, parse_params(args.parameter)).succeeded else 1
    from workflows import argo_runs

    phase = argo_runs.retry(run_target.argo_client(args), args.run, args.parameter)
    print(f"{args.run} retried ({phase}); follow it with `trainyard logs {args.run} -f` or `trainyard get {args.run}`")
    return 0
