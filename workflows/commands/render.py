"""`trainyard render`: the workflow YAML generated from the Hera definitions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workflows.render import RENDERED_DIR


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="write the workflow YAML generated from the Hera definitions",
                       description="Render the WorkflowTemplate and CronWorkflow to YAML (the committed golden files).")
    p.add_argument("--out", type=Path, default=RENDERED_DIR, help="output folder (default workflows/rendered)")
    p.add_argument("--check", action="store_true", help="only check that the files are up to date")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workflows.render import render, stale

    if args.check:
        problems = stale(args.out)
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print(f"{args.out}: up to date")
        return 1 if problems else 0
    for path in render(args.out):
        print(f"wrote {path}")
    return 0
