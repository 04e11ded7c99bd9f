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
