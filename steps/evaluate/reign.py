"""A champion's reign: the tests comparisons against it have run, counted so that two selects
that overlap never take the same place in it.

The k-th test of a reign is held to alpha / (k (k + 1)) (steps/evaluate/promotion.py). Two
selects that both read k before either wrote k + 1 would both test at k's level and spend its
share twice. So a select claims its place before the test, in one transaction whose UPDATE ...
RETURNING reads and raises the count at once: PostgreSQL holds the reign's row until the claim
commits and the other UPDATE then counts on from the committed value; SQLite's BEGIN IMMEDIATE
lets one writer in at a time. A claim whose test never gets recorded (the step stopped) spends
its share unused: the bound stays, the count only errs on the strict side.
"""

from __future__ import annotations

from steps.db import Database

# What a reign's tests are counted on: every test against the champion, together.
WHOLE_REIGN = ""


def next_test(db: Database, champion_id: str, comparison_set: str = WHOLE_REIGN) -> int:
    """The place the next test against this champion would take (a decision refused before any
    test reports it; it claims nothing)."""
    with db.transaction() as tx:
        rows = tx.query("SELECT tests FROM reigns WHERE champion_model_id = ? AND comparison_set = ?",
                        (champion_id, comparison_set))
    return 1 + (int(rows[0][0]) if rows else 0)


def claim_test(db: Database, champion_id: str, comparison_set: str = WHOLE_REIGN) -> int:
    """Take the next place in this champion's reign and return it: no other select gets it."""
    with db.transaction() as tx:
        tx.execute("INSERT INTO reigns (champion_model_id, comparison_set, tests) VALUES (?, ?, 0) "
                   "ON CONFLICT (champion_model_id, comparison_set) DO NOTHING", (champion_id, comparison_set))
        rows = tx.query("UPDATE reigns SET tests = tests + 1 WHERE champion_model_id = ? AND comparison_set = ? "
                        "RETURNING tests", (champion_id, comparison_set))
    return int(rows[0][0])
