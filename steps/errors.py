"""One exception hierarchy for everything a user can get wrong.

Messages name the file, the field and the fix. The CLIs turn these into a one-line
`error: ...` and a non-zero exit; anything else is a bug and keeps its traceback.
"""


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
    deeply shared value (an alias bomb) costs nothing and prints one line."""
    import reprlib

    short = reprlib.Repr()  # Python 3.11 takes no keyword arguments here
    short.maxlevel, short.maxdict, short.maxlist, short.maxtuple, short.maxset = 2, 3, 3, 3, 3
    short.maxstring = short.maxother = limit
    text = short.repr(value).replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."
