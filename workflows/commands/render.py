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
                       "cronworkflow.yaml), and write the chart's README.md from the `# --` comments of its values.yaml.")
    p.add_argument("--out", type=Path, default=None, help="output folder of the YAML (default: workflows/rendered of the checkout you are in)")
    p.add_argument("--chart", type=Path, default=None, help="the Helm chart to write into (default: charts/trainyard of the checkout you are in)")
    p.add_argument("--check", action="store_true", help="only check that the files are up to date")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workflows.chart import CHART_DIR, render_chart, stale_chart
    from workflows.chart_readme import render_readme, stale_readme
    from workflows.checkout import checkout_root
    from workflows.render import RENDERED_DIR, render, stale

    if args.out is None or args.chart is None:  # the checkout the user is in, not the package's folder
        root = checkout_root()
        args.out = args.out or root / RENDERED_DIR.relative_to(RENDERED_DIR.parents[1])
        args.chart = args.chart or root / CHART_DIR.relative_to(CHART_DIR.parents[1])

    if args.check:
        problems = stale(args.out) + stale_chart(args.chart) + stale_readme(args.chart)
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print(f"{args.out} and {args.chart}: up to date")
        return 1 if problems else 0
    for path in [*render(args.out), *render_chart(args.chart), render_readme(args.chart)]:
        print(f"wrote {path}")
    return 0
