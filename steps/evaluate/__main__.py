"""`python -m steps.evaluate`: score a train run's checkpoints and promote the best if it wins."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.cli import add_config_arguments, run_cli
from steps.config import load_config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.evaluate",
        description="Score every checkpoint on the validation split (COCO AP, dv_mAP, EIR), select the best "
        "by evaluate.select_key, register it, and promote it if it beats the production model.",
    )
    parser.add_argument("--repo", help="dataset repo (git URL or path); default: dataset.repo")
    parser.add_argument("--dataset-version", required=True, help="training dataset tag, e.g. datasets/v1")
    parser.add_argument("--checkpoints", type=Path, required=True, help="the train step's output folder")
    parser.add_argument("--run-id", default="manual", help="pipeline run id recorded in the lineage")
    parser.add_argument("--output", type=Path, required=True, help="evaluation folder (evaluation.json, report.html)")
    parser.add_argument("--output-promoted", type=Path, help="write true/false here")
    parser.add_argument("--output-model-uri", type=Path, help="write the registered model's URI here")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides, args.set_list)

    from steps.dataset_repo import checkout_dataset
    from steps.evaluate.evaluate import evaluate

    with checkout_dataset(args.repo or config.dataset.repo, args.dataset_version, config.dataset.dataset_dir) as data:
        result = evaluate(config, data, args.checkpoints, args.output, args.run_id, args.dataset_version)
    for path, value in ((args.output_promoted, str(result.promoted).lower()), (args.output_model_uri, result.model_uri)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(value)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
