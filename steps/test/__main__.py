"""`python -m steps.test`: a model (the run's, production, or a given one) on the test split, with a report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.cli import add_config_arguments, run_cli
from steps.config import load_config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.test",
        description="Run a model on the held-out test split: predictions.json, metrics.json and an index.html "
        "report with masks, boxes, labels and the read plate strings drawn on each image.",
    )
    parser.add_argument("--repo", help="dataset repo (git URL or path); default: dataset.repo")
    parser.add_argument("--dataset-version", required=True, help="training dataset tag, e.g. datasets/v1")
    parser.add_argument("--model", default="production",
                        help="'production' (default), a registered model id or URI (evaluate's model-uri), or a .pth file")
    parser.add_argument("--compare", choices=["production", "none"], default="none",
                        help="production: also score the production model on the same images and show it beside")
    parser.add_argument("--output", type=Path, required=True, help="report folder")
    parser.add_argument("--test-page", type=Path,
                        help="also write the report as one self-contained HTML file here (what the Argo UI can show)")
    parser.add_argument("--evaluation", type=Path, help="the evaluate step's folder (its report.html)")
    parser.add_argument("--evaluation-page", type=Path, help="write --evaluation's report as one self-contained HTML file here")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides, args.set_list)

    from steps.dataset_repo import checkout_dataset
    from steps.test.inference import run_test

    with checkout_dataset(args.repo or config.dataset.repo, args.dataset_version, config.dataset.dataset_dir) as data:
        page = run_test(config, data, args.model, args.output, args.dataset_version, compare=args.compare == "production")
    from steps.report_page import inline_page

    if args.test_page:
        print(f"test: page {inline_page(page, args.test_page)}", flush=True)
    if args.evaluation and args.evaluation_page:
        print(f"test: page {inline_page(args.evaluation / 'report.html', args.evaluation_page)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
