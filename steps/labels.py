"""Class labels, compared one way wherever they come from: annotation files, configs, `--set` values.

Labels are compared in Unicode NFC (`é` typed as one character or as `e` and a combining accent is
one class) and bounded, because a label becomes a category name, a metric key and part of a step's
arguments.
"""

from __future__ import annotations

import unicodedata

# A label becomes a category name, a metric key and part of a step's arguments: bounded, one line.
MAX_LABEL_CHARS = 128


def clean_label(label: str) -> str:
    """A label in Unicode NFC (an accent typed two ways is one class), checked: at most
    MAX_LABEL_CHARS characters and no control characters. ValueError says what is wrong."""
    label = unicodedata.normalize("NFC", label)
    if len(label) > MAX_LABEL_CHARS:
        raise ValueError(f"a label of {len(label):,} characters; labels are names of at most {MAX_LABEL_CHARS}")
    if any(unicodedata.category(ch) == "Cc" for ch in label):
        raise ValueError(f"label {label[:40]!r} contains a control character (a line break, tab or NUL); rename it")
    return label
