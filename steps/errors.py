"""One exception hierarchy for everything a user can get wrong.

Messages name the file, the field and the fix. The CLIs turn these into a one-line
`error: ...` and a non-zero exit; anything else is a bug and keeps its traceback.
"""

import reprlib

from steps.redact import redact_value


class TrainyardError(Exception):
    """Base class: a problem the user can fix (bad input, bad config, missing service)."""


class ConfigError(TrainyardError):
    """The configuration or a `--set` override is invalid."""


class InputError(TrainyardError):
    """An input file or folder is missing or malformed."""


class ExternalError(TrainyardError):
    """A tool or service the step relies on (git, DVC, a database, a bucket) failed."""


def excerpt(value: object, limit: int = 60) -> str:
    """A short repr of a bad value for a message: bounded in depth and width, so quoting a huge or
    deeply shared value (an alias bomb) costs nothing and prints one line. Every string in it is
    redacted whole before it is cut: a URL cut first could show part of its password."""
    text = _Short(limit).repr(value).replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Short(reprlib.Repr):
    def __init__(self, limit: int) -> None:
        super().__init__()  # Python 3.11 takes no keyword arguments here
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple, self.maxset = 2, 3, 3, 3, 3
        self.maxstring = self.maxother = limit

    def repr_str(self, x: str, level: int) -> str:
        return super().repr_str(redact_value(x), level)
