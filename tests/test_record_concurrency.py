"""Two record runs of one version at the same time, against PostgreSQL: exactly one dataset.

The test holds the per-version lock itself until both runs wait on it, so both have converted,
pushed their data and tagged locally before either may commit: the race is certain, not likely.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from steps.datasets import vcs
from steps.config import Config, load_config
from steps.datasets.repo import commit_annotations
from steps.db import URL_ENV, Database
from steps.errors import InputError
from steps.record.record import record
from tests.git_daemon import served

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
# Names and labels that break naively built SQL; they must be stored as they are.
WEIRD_NAME = """O'Brien "plate"; DROP TABLE training_datasets; --.png"""
WEIRD_LABEL = "'); DELETE FROM annotation_images; --"


def _config(url: str) -> Config:
    config = load_config()
    config.database.url = url  # as the environment would give it: never a config value
    return config


def _add_weird_file(annotations: Path) -> None:
    Image.new("RGB", (40, 30), (200, 200, 200)).save(annotations / WEIRD_NAME)
    doc = {"version": "5.5.0", "flags": {}, "imagePath": WEIRD_NAME, "imageData": None, "imageHeight": 30,
           "imageWidth": 40, "shapes": [{"label": WEIRD_LABEL, "points": [[2, 2], [20, 2], [20, 12], [2, 12]],
                                         "shape_type": "polygon", "group_id": None, "flags": {}}]}
    (annotations / "weird.json").write_text(json.dumps(doc))


def _wait_for_waiters(admin, processes: list[subprocess.Popen], count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    cursor = admin.cursor()
    while time.monotonic() < deadline:
        cursor.execute("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        if cursor.fetchone()[0] >= count:
            return
        finished = [p for p in processes if p.poll() is not None]
        if finished:
            out, err = finished[0].communicate()
            pytest.fail(f"a recorder ended before reaching the lock:\n{out}\n{err}")
        time.sleep(0.1)
    pytest.fail("the recorders did not both reach the dataset lock in time")


def test_two_concurrent_records_end_with_one_dataset(sample_repo: Path, fresh_postgres: str) -> None:
    import psycopg2

    _add_weird_file(sample_repo / "annotations")
    commit_annotations(sample_repo, "annotations", "annotations/v2")
    Database(fresh_postgres).migrate()
    command = [sys.executable, "-m", "steps.record", "--repo", str(sample_repo), "--annotation-version",
               "annotations/v2"]

    admin = psycopg2.connect(fresh_postgres)
    admin.autocommit = True
    admin.cursor().execute("SELECT pg_advisory_lock(hashtext(%s))", ("trainyard-dataset:datasets/v2",))
    processes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, URL_ENV: fresh_postgres}) for _ in range(2)]
    try:
        _wait_for_waiters(admin, processes, count=2)
    finally:
        admin.cursor().execute("SELECT pg_advisory_unlock(hashtext(%s))", ("trainyard-dataset:datasets/v2",))
        admin.close()
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    logs = "\n".join(out for out, _ in outputs)
    assert logs.count("record: recorded datasets/v2") == 1
    assert logs.count("record: datasets/v2 was recorded concurrently") == 1

    with Database(fresh_postgres).transaction() as tx:
        datasets = tx.query("SELECT version, git_commit, num_train + num_val + num_test FROM training_datasets")
        stored = tx.query("SELECT file_name, labels FROM annotation_images WHERE file_name = ?", (WEIRD_NAME,))
        members = tx.query("SELECT COUNT(*) FROM dataset_images")[0][0]
    assert len(datasets) == 1 and datasets[0][0] == "datasets/v2" and datasets[0][2] == 13 and members == 13
    # The one tag is the winner's commit, the one in the database.
    assert vcs.remote_tags(str(sample_repo), "datasets/*") == ["datasets/v2"]
    assert vcs.git(sample_repo, "rev-parse", "datasets/v2^{commit}").strip() == datasets[0][1]
    assert stored == [(WEIRD_NAME, json.dumps([WEIRD_LABEL]))]
    # A third run, later, finds it recorded and changes nothing.
    again = record(_config(fresh_postgres), str(sample_repo), "annotations/v2")
    assert not again.created and sum(again.counts.values()) == 13 and WEIRD_LABEL in again.categories


# --- a record process killed while its tag is on the remote but its rows are not committed ----------

def _hold_pushes_after_the_tag_lands(repo: Path, reached: Path, gate: Path) -> None:
    """A post-receive hook: git has updated the tag on the remote, and `git push` waits for the hook.
    The first push announces itself (`reached`) and then waits until `gate` is removed."""
    gate.touch()
    hook = repo / ".git" / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\nif [ ! -e '{reached}' ]; then\n  touch '{reached}'\n  i=0\n"
                    f"  while [ -e '{gate}' ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done\nfi\n")
    hook.chmod(0o755)


def _start_record_and_wait_for_the_push(repo: Path, served_as: str, url: str, reached: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "steps.record", "--repo", served_as]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, URL_ENV: url})
    deadline = time.monotonic() + 180
    while not reached.exists():
        if process.poll() is not None:
            pytest.fail(f"record ended before pushing its tag:\n{process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("record did not reach its tag push in time")
        time.sleep(0.1)
    # The window: the tag is on the remote, the database transaction is still open.
    assert vcs.remote_tags(str(repo), "datasets/*") == ["datasets/v1"]
    return process


def _datasets(url: str) -> int:
    with Database(url).transaction() as tx:
        return tx.query("SELECT COUNT(*) FROM training_datasets")[0][0]


def test_sigterm_during_the_tag_push_takes_the_tag_back(sample_repo: Path, tmp_path: Path) -> None:
    import signal

    url, reached, gate = f"sqlite:///{tmp_path / 'meta.sqlite'}", tmp_path / "reached", tmp_path / "gate"
    _hold_pushes_after_the_tag_lands(sample_repo, reached, gate)
    with served(sample_repo) as served_as:  # a server runs its hooks; a local path's never run for us
        process = _start_record_and_wait_for_the_push(sample_repo, served_as, url, reached)
        try:
            process.send_signal(signal.SIGTERM)  # what Kubernetes sends when the pod is deleted or preempted
            out, err = process.communicate(timeout=120)
        finally:
            gate.unlink()
    assert process.returncode == 143, out + err
    assert err.startswith("error: record stopped by SIGTERM;") and err.count("\n") == 1
    assert "record: deleted the tag datasets/v1 again: its push was interrupted and nothing was recorded" in out
    assert vcs.remote_tags(str(sample_repo), "datasets/*") == [] and _datasets(url) == 0
    # Nothing is left for a person to clean up: the next run records.
    assert record(_config(url), str(sample_repo)).created


def test_a_rerun_repairs_the_tag_of_a_record_killed_without_cleanup(sample_repo: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    url, reached, gate = f"sqlite:///{tmp_path / 'meta.sqlite'}", tmp_path / "reached", tmp_path / "gate"
    _hold_pushes_after_the_tag_lands(sample_repo, reached, gate)
    with served(sample_repo) as served_as:
        process = _start_record_and_wait_for_the_push(sample_repo, served_as, url, reached)
        try:
            process.kill()  # SIGKILL (the end of the grace period, an OOM kill): no cleanup can run
            process.communicate(timeout=60)
        finally:
            gate.unlink()
    assert vcs.remote_tags(str(sample_repo), "datasets/*") == ["datasets/v1"] and _datasets(url) == 0
    stale = vcs.git(sample_repo, "rev-parse", "datasets/v1").strip()

    result = record(_config(url), str(sample_repo))
    assert result.created and _datasets(url) == 1
    assert ("record: datasets/v1 is tagged in " in capsys.readouterr().out)
    assert vcs.git(sample_repo, "rev-parse", "datasets/v1").strip() != stale  # a new tag, for the new rows
    with Database(url).transaction() as tx:
        commit = tx.query("SELECT git_commit FROM training_datasets")[0][0]
    assert vcs.git(sample_repo, "rev-parse", "datasets/v1^{commit}").strip() == commit


def test_a_hand_made_tag_without_rows_is_left_to_a_person(sample_repo: Path, tmp_path: Path) -> None:
    vcs.git(sample_repo, "tag", "-a", "-m", "made by hand", "datasets/v1")
    with pytest.raises(InputError, match=r"datasets/v1 is tagged in .* but not in the database, and the tag was not "
                                         r"made by record \('made by hand'\)"):
        record(_config(f"sqlite:///{tmp_path / 'meta.sqlite'}"), str(sample_repo))
    assert vcs.remote_tags(str(sample_repo), "datasets/*") == ["datasets/v1"]
