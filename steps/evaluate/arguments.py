"""The command-line arguments and output files that `steps.evaluate` and `steps.select` share."""

from __future__ import annotations

import argparse
from pathlib import Path

from steps.cli import add_config_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", help="dataset repo (git URL or path); default: dataset.repo")
    parser.add_argument("--dataset-version", required=True, help="training dataset tag, e.g. datasets/v1")
    parser.add_argument("--checkpoints", type=Path, required=True, help="the train step's output folder")
    parser.add_argument("--run-id", default="manual", help="pipeline run id recorded in the lineage")
    parser.add_argument("--output", type=Path, required=True, help="evaluation folder (evaluation.json, report.html)")
    parser.add_argument("--output-promoted", type=Path, help="write true/false here")
    parser.add_argument("--output-model-uri", type=Path, help="write the registered model's URI here")
    add_config_arguments(parser)


def write_outputs(args: argparse.Namespace, promoted: bool, model_uri: str) -> None:
    """The output parameters Argo reads from files: promoted (true/false) and the model's URI."""
    for path, value in ((args.output_promoted, str(promoted).lower()), (args.output_model_uri, model_uri)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(value)
