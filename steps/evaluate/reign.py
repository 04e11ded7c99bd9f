"""A champion's reign: the tests comparisons against it have run on one comparison set (the
validation split), counted so that two selects that overlap never take the same place.

The k-th test of a reign on one validation split is held to alpha / (k (k + 1))
(steps/evaluate/promotion.py), so however many nights compare challengers with the champion on
those images, the chance that an equal one replaces it stays within alpha. A new validation split
(new images, or new labels on them: `comparison_set`) is new evidence: its tests count from 1
again (docs/metrics.md#promotion says why and what it costs).

Two selects that both read k before either wrote k + 1 would both test at k's level and spend
its share twice. So a select claims its place before the test, in one transaction whose UPDATE
... RETURNING reads and raises the count at once: PostgreSQL holds the reign's row until the claim
commits and the other UPDATE then counts on from the committed value; SQLite's BEGIN IMMEDIATE
lets one writer in at a time. A claim whose test never gets recorded (the step stopped) spends its
share unused: the bound stays, the count only errs on the strict side.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from steps.db import Database

# Tests counted before comparison sets were told apart (migration 7): they count against every
# comparison set of their champion, the strict reading of what they were.
UNSPLIT = ""


def comparison_set(gt: dict[str, Any]) -> str:
    """The validation split as what a comparison is made on: its images by file name and their
    objects by class name, whatever ids a dataset version numbered them with."""
    names = {c["id"]: c["name"] for c in gt.get("categories", [])}
    files = {image["id"]: image["file_name"] for image in gt.get("images", [])}
    objects = sorted(json.dumps([files.get(a.get("image_id")), names.get(a.get("category_id")), a.get("iscrowd", 0),
                                 a.get("bbox"), a.get("segmentation")], sort_keys=True)
                     for a in gt.get("annotations", []))
    text = json.dumps({"images": sorted(map(str, files.values())), "objects": objects}, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def next_test(db: Database, champion_id: str, split: str) -> int:
    """The place the next test against this champion on this split would take (a decision refused
    before any test reports it; it claims nothing)."""
    with db.transaction() as tx:
        rows = tx.query("SELECT comparison_set, tests FROM reigns WHERE champion_model_id = ? AND comparison_set IN (?, ?)",
                        (champion_id, split, UNSPLIT))
    counts = dict(rows)
    return 1 + int(counts.get(split, counts.get(UNSPLIT, 0)))


def claim_test(db: Database, champion_id: str, split: str) -> int:
    """Take the next place in this champion's reign on this split and return it: no other select gets it."""
    with db.transaction() as tx:
        # A new split's count starts from 0, or from the champion's unsplit tests (UNSPLIT).
        tx.execute("INSERT INTO reigns (champion_model_id, comparison_set, tests) "
                   "SELECT ?, ?, COALESCE(MAX(tests), 0) FROM reigns WHERE champion_model_id = ? AND comparison_set = ? "
                   "ON CONFLICT (champion_model_id, comparison_set) DO NOTHING",
                   (champion_id, split, champion_id, UNSPLIT))
        rows = tx.query("UPDATE reigns SET tests = tests + 1 WHERE champion_model_id = ? AND comparison_set = ? "
                        "RETURNING tests", (champion_id, split))
    return int(rows[0][0])
