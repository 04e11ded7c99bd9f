"""The `trainyard` command. Each subcommand lives in workflows/commands/<name>.py."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from steps.cli import run_cli
from steps import __version__
from workflows.commands import (coco_eval, get, labelme2coco, lint, logs, models, predict, prune, render, retry, run, runs,
                                sample_data, stop, submit)

# Add a command: write workflows/commands/<name>.py with add_parser(), list it here. Command
# modules import their heavy dependencies (torch, Hera) inside run(), so `--help` stays fast.
COMMANDS = [sample_data, run, runs, get, logs, stop, retry, render, lint, coco_eval, models, predict, prune, labelme2coco, submit]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainyard",
        description="trainyard: record, train, evaluate and test Mask R-CNN on Argo Workflows, or on this machine.",
    )
    parser.add_argument("--version", action="version", version=f"trainyard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()

    def dispatch(arguments: Sequence[str] | None) -> int:
        args = parser.parse_args(arguments)
        return args.func(args)

    return run_cli(dispatch, argv)


if __name__ == "__main__":
    sys.exit(main())
