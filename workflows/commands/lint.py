"""`trainyard lint [FILE ...]`: strict offline check of Argo manifests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lint", help="check Argo manifests strictly offline",
                       description="Check Workflow, WorkflowTemplate, CronWorkflow and ClusterWorkflowTemplate manifests "
                       "against Argo's API (unknown keys, wrong types) and DAG sanity. One line per problem; "
                       "exit 1 when there is one. No files: trainyard's own rendered templates.")
    p.add_argument("files", nargs="*", help="YAML files or folders (multi-document files allowed)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workflows.lint import lint_paths
    from workflows.render import RENDERED_DIR

    paths = [Path(p) for p in args.files] or sorted(RENDERED_DIR.glob("*.yaml"))
    problems = lint_paths(paths)
    for problem in problems:
        print(problem)
    print(f"{len(paths)} file(s) checked, {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0
