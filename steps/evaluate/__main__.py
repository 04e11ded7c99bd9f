"""`python -m steps.evaluate`: score a train run's checkpoints and promote the best if it wins."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.cli import add_config_arguments, add_dataset_arguments, dataset_folder, load_step_config, run_cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.evaluate",
        description="Score every checkpoint on the validation split (COCO AP, dv_mAP, EIR), select the best "
        "by evaluate.select_key, register it, and promote it if it beats the production model.",
    )
    add_dataset_arguments(parser, "evaluate on")
    parser.add_argument("--checkpoints", type=Path, required=True, help="the train step's output folder")
    parser.add_argument("--run-id", default="manual", help="pipeline run id recorded in the lineage")
    parser.add_argument("--output", type=Path, required=True, help="evaluation folder (evaluation.json, report.html)")
    parser.add_argument("--output-promoted", type=Path, help="write true/false here")
    parser.add_argument("--output-model-uri", type=Path, help="write the registered model's URI here")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = load_step_config(args)

    from steps.evaluate.evaluate import evaluate

    with dataset_folder(parser, args, config) as data:
        version = args.dataset_version or str(args.dataset_dir)  # what the lineage records
        result = evaluate(config, data, args.checkpoints, args.output, args.run_id, version)
    for path, value in ((args.output_promoted, str(result.promoted).lower()), (args.output_model_uri, result.model_uri)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(value)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
