"""The command-line arguments that `steps.evaluate` and `steps.select` share, and select's output files."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from steps.cli import add_config_arguments, load_step_config
from steps.config import Config
from steps.datasets.arguments import add_dataset_arguments
from steps.evaluate.groups import branch_name


def add_arguments(parser: argparse.ArgumentParser, checkpoints_required: bool = True) -> None:
    add_dataset_arguments(parser, "evaluate on")
    source = parser.add_mutually_exclusive_group(required=checkpoints_required)
    source.add_argument("--checkpoints", type=Path, help="the train step's output folder")
    source.add_argument("--checkpoint-uri", metavar="URI",
                        help="or the train run's durable checkpoints (folder or gs://; a sweep branch's), downloaded first")
    parser.add_argument("--branch", default="", type=branch_name,
                        help="sweep branch this train run is, b0..b999 (scores are labelled with it)")
    parser.add_argument("--branch-overrides", default="", metavar="'K=V K=V'",
                        help="the branch's own config overrides, applied after --set-list")
    parser.add_argument("--run-id", default="manual", help="pipeline run id recorded in the lineage")
    parser.add_argument("--output", type=Path, required=True,
                        help="output folder (evaluate: scores.json and predictions; select: evaluation.json, report.html)")
    add_config_arguments(parser)


def load_branch_config(args: argparse.Namespace, branch_overrides: str = "") -> Config:
    """The step's config, a sweep branch's own overrides applied last (they win)."""
    return load_step_config(argparse.Namespace(**{**vars(args), "set_list": f"{args.set_list} {branch_overrides}".strip()}))


@contextmanager
def checkpoints_folder(args: argparse.Namespace) -> Iterator[Path]:
    """The train output folder: --checkpoints, or a download of --checkpoint-uri."""
    if args.checkpoints is not None:
        yield args.checkpoints
        return
    from steps.models.durable_checkpoints import CheckpointMirror
    from steps.storage import check_location

    with tempfile.TemporaryDirectory(prefix="trainyard-checkpoints-") as scratch:
        CheckpointMirror(check_location(args.checkpoint_uri), Path(scratch)).restore()
        yield Path(scratch)


def write_outputs(args: argparse.Namespace, promoted: bool, model_uri: str) -> None:
    """The output parameters Argo reads from files: promoted (true/false) and the model's URI."""
    for path, value in ((args.output_promoted, str(promoted).lower()), (args.output_model_uri, model_uri)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(value)
