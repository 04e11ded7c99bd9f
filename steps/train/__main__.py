"""`python -m steps.train`: fetch a recorded dataset version and train on it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.cli import add_config_arguments, run_cli
from steps.config import Config
from steps.datasets.arguments import add_dataset_arguments, dataset_folder
from steps.evaluate.arguments import load_branch_config
from steps.evaluate.groups import branch_name


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.train",
        description="Train Mask R-CNN on a recorded dataset version. Writes checkpoints/, metrics.json, "
        "tensorboard/ and config.yaml to --output, and resumes from the checkpoints already there "
        "(or at --checkpoint-uri). SIGTERM writes a checkpoint and exits with 143 so a retry resumes.",
    )
    add_dataset_arguments(parser, "train on")
    parser.add_argument("--output", type=Path, required=True, help="output folder (the checkpoints artifact)")
    parser.add_argument(
        "--checkpoint-uri",
        default="",
        metavar="URI",
        help="durable copy of the checkpoints (folder or gs://bucket/prefix, unique per run): each checkpoint is "
        "uploaded when written and a retried pod resumes from there; sets train.checkpoint_uri (empty: keep the config's)",
    )
    parser.add_argument("--checkpoint-root", default="", metavar="URI",
                        help="like --checkpoint-uri, as ROOT/RUN_ID: how the workflow passes it (empty: off)")
    parser.add_argument("--run-id", default="", help="pipeline run id, the last part of --checkpoint-root's location")
    parser.add_argument("--output-checkpoint-groups", type=Path, metavar="FILE",
                        help="write the checkpoints as a JSON list of groups of evaluate.checkpoints_per_pod file "
                        "names (comma-separated): the list the fan-out evaluation runs one pod per item of")
    parser.add_argument("--branch", default="", type=branch_name, help="sweep branch name, b0..b999 (with --output-branch)")
    parser.add_argument("--branch-overrides", default="", metavar="'K=V K=V'",
                        help="the sweep branch's own config overrides, applied after --set-list")
    parser.add_argument("--output-branch", type=Path, metavar="FILE",
                        help="write the branch (name, overrides, checkpoints, their durable URI) as JSON here: the "
                        "item the sweep's evaluate pods fan out over; needs --checkpoint-root")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = load_branch_config(args, args.branch_overrides)
    if args.output_branch and not (args.branch and args.checkpoint_root):
        parser.error("--output-branch needs --branch and --checkpoint-root (the branch's checkpoints are read back from there)")
    from steps.storage import check_location, join

    if args.checkpoint_root:
        if not args.run_id:
            parser.error("--checkpoint-root needs --run-id (each run gets its own checkpoint folder)")
        config.train.checkpoint_uri = join(args.checkpoint_root, args.run_id)
    if args.checkpoint_uri:
        config.train.checkpoint_uri = check_location(args.checkpoint_uri)  # a one-line error, not pydantic's

    from steps.models import get_backend

    backend = get_backend(config.model.backend)  # fails fast when the backend is not installed
    backend.check(config)  # and on a bad setting, before the dataset checkout
    with dataset_folder(parser, args, config) as data:
        check_select_key(data, config)
        summary = backend.train(data, args.output, config)
    print(f"train: done: {summary.describe()}", flush=True)
    if args.output_checkpoint_groups:
        from steps.evaluate.groups import write_groups

        write_groups(args.output, config.evaluate.checkpoints_per_pod, args.output_checkpoint_groups)
    if args.output_branch:
        from steps.evaluate.groups import write_branch

        write_branch(args.output, args.branch, args.branch_overrides, config.train.checkpoint_uri, args.output_branch)
    return 0


def check_select_key(data: Path, config: Config) -> None:
    """Refuse, before training rather than after it, an evaluate.select_key that names no metric
    of this dataset (e.g. a plate key on a dataset without plates, with no fallback)."""
    from steps.jsonio import read_json
    from steps.metrics.summary import metric_keys, resolve_select_key

    if (data / "val.json").is_file():
        categories = read_json(data / "val.json", "COCO ground truth").get("categories") or []
        resolve_select_key(config.evaluate.model_copy(), metric_keys({"categories": categories}, config.evaluate))


if __name__ == "__main__":
    sys.exit(run_cli(main))
