"""`trainyard render`: the workflow YAML and Helm chart templates generated from the Hera definitions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# workflows.chart/render import the Hera definitions (a second): only `run` loads them.


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="write the workflow YAML and chart templates generated from the Hera definitions",
                       description="Render the WorkflowTemplate and CronWorkflow to YAML (the committed golden files) and "
                       "to the Helm chart's generated templates (charts/trainyard/templates/workflowtemplate.yaml, "
                       "cronworkflow.yaml).")
    p.add_argument("--out", type=Path, help="output folder of the YAML (default workflows/rendered)")
    p.add_argument("--chart", type=Path, help="the Helm chart to write into (default charts/trainyard)")
    p.add_argument("--check", action="store_true", help="only check that the files are up to date")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workflows.chart import CHART_DIR, render_chart, stale_chart
    from workflows.render import RENDERED_DIR, render, stale

    args.out = args.out or RENDERED_DIR
    args.chart = args.chart or CHART_DIR

    if args.check:
        problems = stale(args.out) + stale_chart(args.chart)
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print(f"{args.out} and {args.chart}: up to date")
        return 1 if problems else 0
    for path in [*render(args.out), *render_chart(args.chart)]:
        print(f"wrote {path}")
    return 0
