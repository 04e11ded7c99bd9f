"""Small helpers shared by the step entry points (`python -m steps.<name>`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from steps.errors import TrainyardError


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Call `main`, turning user errors into one line on stderr and exit code 2."""
    try:
        return main(argv) or 0
    except TrainyardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `trainyard models show x | head`: the reader left, not an error
        sys.stderr.close()
        return 0


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The `--config FILE` and `--set key=value` pair every step understands."""
    parser.add_argument("--config", help="pipeline config YAML (default: built-in defaults)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.iterations=50 (repeatable)",
    )
    parser.add_argument(
        "--set-list",
        default="",
        metavar="'K=V K=V'",
        help="several overrides in one shell-quoted string (how the workflow passes them)",
    )
