"""`python -m steps.evaluate`: score a train run's checkpoints and promote the best if it wins."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.cli import run_cli
from steps.datasets.arguments import dataset_folder
from steps.evaluate.arguments import (
    add_arguments,
    checkpoints_folder,
    load_branch_config,
    write_outputs,
)
from steps.evaluate.groups import write_scores


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.evaluate",
        description="Score every checkpoint on the validation split (COCO AP, dv_mAP, EIR), select the best "
        "by evaluate.select_key, register it, and promote it if it beats the production model.",
    )
    parser.add_argument("--only", metavar="NAMES",
                        help="fan-out mode: score only these checkpoints (comma-separated file names, one item of "
                        "train's checkpoint groups, or `all`) into --output/scores.json; `python -m steps.select` then "
                        "selects and promotes")
    parser.add_argument("--output-scores", type=Path,
                        help="with --only: write the scores (a JSON list) here too, whole or not at all, and each "
                        "checkpoint's predictions beside it: the object `python -m steps.select` reads with the other "
                        "pods' (workflows/pipeline.py SCORES_KEY), rescoring the best one's predictions")
    add_arguments(parser)
    args = parser.parse_args(argv)
    config = load_branch_config(args, args.branch_overrides)

    from steps.evaluate.evaluate import evaluate, score_only

    with dataset_folder(parser, args, config) as data, checkpoints_folder(args) as checkpoints:
        if args.only is not None:
            scores = score_only(config, data, checkpoints, args.only, args.output,
                                args.output_scores.parent if args.output_scores else None)
            # A sweep branch's scores say which branch, with which settings and where its checkpoints are.
            branch = {"branch": args.branch, "overrides": args.branch_overrides, "source": args.checkpoint_uri}
            scores = [{**row, **branch} for row in scores] if args.branch else scores
            if args.output_scores:
                write_scores(args.output_scores, scores)
            return 0
        version = args.dataset_version or str(args.dataset_dir)  # what the lineage records
        result = evaluate(config, data, checkpoints, args.output, args.run_id, version)
    write_outputs(args, result.promoted, result.model_uri)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
