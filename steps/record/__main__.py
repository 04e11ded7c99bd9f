"""`python -m steps.record`: thin entry point; the work is in steps.record.record."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.cli import add_config_arguments, run_cli
from steps.config import load_config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.record",
        description="Turn the labelme annotations at an annotation tag into a COCO training dataset, "
        "record its metadata in the database, dvc push it, and tag it in the dataset repo.",
    )
    parser.add_argument("--repo", help="dataset repo (git URL or path); default: dataset.repo")
    parser.add_argument("--annotation-version", default="", help="annotation tag; default: the newest annotations/* tag")
    parser.add_argument("--output-version", type=Path, help="write the recorded dataset version to this file")
    # Checked only: the pipeline's `when` reads anything but `true` as no (Argo's enum on the
    # parameter is not enforced on `argo submit --from workflowtemplate/...`: workflows/pipeline.py).
    parser.add_argument("--force-retrain", choices=["true", "false"],
                        help="the run's force-retrain parameter, refused unless true or false")
    parser.add_argument("--output-needs-training", type=Path,
                        help="write true/false: the version is new, or no model was trained on it yet")
    add_config_arguments(parser)
    args = parser.parse_args(argv)

    from steps.record.record import record  # heavy imports only after --help
    from steps.record.sigterm import EXIT_CODE, Terminated, fail_on_sigterm

    config = load_config(args.config, args.overrides, args.set_list)
    try:
        with fail_on_sigterm():
            result = record(config, repo=args.repo or config.dataset.repo, annotation_version=args.annotation_version)
    except Terminated:
        print("error: record stopped by SIGTERM; whatever was not recorded yet was rolled back (database rows "
              "and the pushed tag); run it again to record the version", file=sys.stderr)
        return EXIT_CODE
    if args.output_version:
        args.output_version.parent.mkdir(parents=True, exist_ok=True)
        args.output_version.write_text(result.version)
    if args.output_needs_training:
        from steps.db import Database, resolve_url
        from steps.record.training_needed import needs_training

        needed = needs_training(Database(resolve_url(config.database.url)), result.version, result.created)
        args.output_needs_training.parent.mkdir(parents=True, exist_ok=True)
        args.output_needs_training.write_text("true" if needed else "false")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
