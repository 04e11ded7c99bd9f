"""`python -m steps.test`: a model (the run's, production, or a given one) on the test split, with a report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.cli import add_config_arguments, load_step_config, run_cli
from steps.datasets.arguments import add_dataset_arguments, dataset_folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.test",
        description="Run a model on the held-out test split: predictions.json, metrics.json and an index.html "
        "report with masks, boxes, labels and the read plate strings drawn on each image.",
    )
    add_dataset_arguments(parser, "test on")
    parser.add_argument("--model", default="production",
                        help="'production' (default), a registered model id or URI (evaluate's model-uri), or a .pth file")
    parser.add_argument("--compare", choices=["production", "none"], default="none",
                        help="production: also score the production model on the same images and show it beside")
    parser.add_argument("--output", type=Path, required=True, help="report folder")
    parser.add_argument("--test-page", type=Path,
                        help="also write the report page here, its links rebased to this file (what the Argo UI shows; "
                        "see steps/reports/argo_page.py)")
    parser.add_argument("--evaluation", type=Path, help="the evaluate step's folder (its report.html)")
    parser.add_argument("--evaluation-page", type=Path, help="write --evaluation's report page here, its links rebased to this file")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = load_step_config(args)

    from steps.test.inference import run_test

    with dataset_folder(parser, args, config) as data:
        page = run_test(config, data, args.model, args.output, args.dataset_version or str(args.dataset_dir),
                        compare=args.compare == "production")
    from steps.reports.argo_page import write_page

    if args.test_page:
        print(f"test: page {write_page(page, args.test_page)}", flush=True)
    if args.evaluation and args.evaluation_page:
        print(f"test: page {write_page(args.evaluation / 'report.html', args.evaluation_page)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
