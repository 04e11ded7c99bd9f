"""`python -m steps.evaluate`: one pod of the fan-out evaluation: score checkpoints, nothing more.

Selecting the best checkpoint, registering it and promoting it is `python -m steps.select`'s job,
once per run, from every pod's scores.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.cli import run_cli
from steps.datasets.arguments import dataset_folder
from steps.evaluate.arguments import add_arguments, checkpoints_folder, load_branch_config
from steps.evaluate.groups import write_scores


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.evaluate",
        description="Score checkpoints on the validation split (COCO AP, dv_mAP, EIR) into --output/scores.json. "
        "`python -m steps.select` then selects the best by evaluate.select_key, registers and promotes it.",
    )
    parser.add_argument("--only", metavar="NAMES", default="all",
                        help="score only these checkpoints (comma-separated file names, one item of train's "
                        "checkpoint groups, or `all`, the default)")
    parser.add_argument("--output-scores", type=Path,
                        help="write the scores (a JSON list) here too, whole or not at all, and each checkpoint's "
                        "predictions beside it: the object `python -m steps.select` reads with the other pods' "
                        "(workflows/pipeline.py SCORES_KEY), rescoring the best one's predictions")
    add_arguments(parser)
    args = parser.parse_args(argv)
    config = load_branch_config(args, args.branch_overrides)

    from steps.evaluate.evaluate import score_only

    with dataset_folder(parser, args, config) as data, checkpoints_folder(args) as checkpoints:
        scores = score_only(config, data, checkpoints, args.only, args.output,
                            args.output_scores.parent if args.output_scores else None)
    # A sweep branch's scores say which branch, with which settings and where its checkpoints are.
    branch = {"branch": args.branch, "overrides": args.branch_overrides, "source": args.checkpoint_uri}
    scores = [{**row, **branch} for row in scores] if args.branch else scores
    if args.output_scores:
        write_scores(args.output_scores, scores)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
