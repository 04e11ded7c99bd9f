"""`trainyard lint [FILE ...]`: strict offline check of Argo manifests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lint", help="check Argo manifests strictly offline",
                       description="Check Workflow, WorkflowTemplate, CronWorkflow and ClusterWorkflowTemplate manifests "
                       "as Argo's validator does (names, arguments, variables, outputs, DAGs, ...) and against Argo's "
                       "API (unknown keys, wrong types). templateRef and workflowTemplateRef are followed among the "
                       "files given. One line per problem (file:line: path: message); exit 1 when there is one or "
                       "when nothing was linted. No files: the rendered templates of the checkout you are in.")
    p.add_argument("files", nargs="*",
                   help="YAML files or folders (multi-document files allowed); - reads standard input")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workflows.checkout import checkout_root
    from workflows.lint import lint_sources

    paths = [Path(p) if p != "-" else p for p in args.files]
    if not paths:
        rendered = checkout_root() / "workflows" / "rendered"
        paths = sorted(rendered.glob("*.yaml"))
        print(f"checking the rendered templates in {rendered}", file=sys.stderr)
    problems, count = lint_sources(paths)
    for problem in problems:
        print(problem)
    print(f"{count} file(s) checked, {len(problems)} problem(s)", file=sys.stderr)
    if count == 0:
        print("error: no file to check (a folder without *.yaml files?)", file=sys.stderr)
        return 1
    return 1 if problems else 0
