"""Labels that print alike but are different classes.

Labels are compared in Unicode NFC (steps/datasets/labelme.py): `é` typed as one character or as `e` and a
combining accent is one class. Two labels that still differ may look the same: a Latin `A`
(U+0041) and a Cyrillic `А` (U+0410), a full-width `Ａ`. The model would learn two classes that a
person cannot tell apart in any report, so record warns, naming both with their code points.

The look-alikes are Unicode's compatibility forms (NFKC: full-width, ligatures, super- and
subscripts) and the Cyrillic, Greek and Armenian letters that Unicode's confusables list maps to
a Latin one. Look-alikes within ASCII (`0` and `O`, `1` and `l`) are left alone: a plate dataset
has both on purpose.
"""

from __future__ import annotations

import unicodedata
from itertools import combinations

_LATIN = str.maketrans({
    # Cyrillic
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W", "Ү": "Y", "Ӏ": "I",
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j",
    "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ԁ": "d",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "ν": "v", "ι": "i", "α": "a", "ρ": "p", "υ": "u",
    "χ": "x", "γ": "y", "κ": "k",
    # Armenian
    "Օ": "O", "օ": "o", "Ս": "U", "ս": "u", "Տ": "S", "հ": "h", "ո": "n", "ց": "g",
})


def skeleton(label: str) -> str:
    """What `label` looks like, in plain Latin where another script's letter prints as one."""
    return unicodedata.normalize("NFKC", label).translate(_LATIN)


def look_alikes(labels: list[str]) -> list[tuple[str, str]]:
    """The pairs of distinct labels that print alike."""
    groups: dict[str, list[str]] = {}
    for label in dict.fromkeys(labels):
        groups.setdefault(skeleton(label), []).append(label)
    return [pair for group in groups.values() for pair in combinations(group, 2)]


def look_alike_warning(pair: tuple[str, str]) -> str:
    first, second = pair
    return (f"labels {first!r} ({_code_points(first)}) and {second!r} ({_code_points(second)}) look alike but are "
            "different classes; rename one in the annotations (or list the categories in labels.txt)")


def _code_points(label: str) -> str:
    return " ".join(f"U+{ord(ch):04X}" for ch in label[:8]) + (" ..." if len(label) > 8 else "")
