"""Small helpers shared by the step entry points (`python -m steps.<name>`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from steps.errors import TrainyardError
from steps.redact import redact

if TYPE_CHECKING:
    from steps.config import Config


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Call `main`, turning user errors into one line on stderr (redacted) and exit code 2."""
    try:
        return main(argv) or 0
    except TrainyardError as exc:
        print(f"error: {redact(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `trainyard models show x | head`: the reader left, not an error
        sys.stderr.close()
        return 0


def load_step_config(args: argparse.Namespace) -> Config:
    """The config of `--config`/`--set`/`--set-list`; without --config, say which defaults apply."""
    from steps.config import load_config

    if not args.config:
        # The built-in defaults are the cluster's sizes: hours on a CPU. Say so, don't refuse.
        print("note: no --config: using the built-in defaults (resnet50, 800 px, 2000 iterations: sized for a GPU); "
              "on a laptop pass --config configs/local.yaml", file=sys.stderr, flush=True)
    return load_config(args.config, args.overrides, args.set_list)


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
