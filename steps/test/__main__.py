"""`python -m steps.test`: the production (or a given) model on the test split, with a report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.cli import add_config_arguments, add_dataset_arguments, dataset_folder, load_step_config, run_cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.test",
        description="Run a model on the held-out test split: predictions.json, metrics.json and an index.html "
        "report with masks, boxes, labels and the read plate strings drawn on each image.",
    )
    add_dataset_arguments(parser, "test on")
    parser.add_argument("--model", default="production", help="'production' (default), a registered model id, or a .pth file")
    parser.add_argument("--output", type=Path, required=True, help="report folder")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = load_step_config(args)

    from steps.test.inference import run_test

    with dataset_folder(parser, args, config) as data:
        run_test(config, data, args.model, args.output, args.dataset_version or str(args.dataset_dir))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
