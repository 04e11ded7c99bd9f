"""The trainyard checkout a command works on: the one the current directory is in.

`render` and `lint` write and read the checkout's own files, never those of the folder the
package was installed from: with one virtual environment shared by two checkouts, each command
must act on the checkout it is run in.
"""

from __future__ import annotations

from pathlib import Path

from steps.errors import InputError


def checkout_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the current one) that is a trainyard
    checkout, i.e. holds pyproject.toml and workflows/pipeline.py."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "workflows" / "pipeline.py").is_file():
            return folder
    raise InputError(f"{here} is not inside a trainyard checkout: run this from one, or name the files")
