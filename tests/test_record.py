"""The record step against real git, DVC, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from steps.datasets import vcs
from steps.config import load_config
from steps.datasets.repo import checkout_dataset, commit_annotations, init_dataset_repo
from steps.db import Database
from steps.errors import ConfigError, ExternalError, InputError
from steps.record.metadata import DatasetRow, ImageRow, find_dataset, insert_dataset
from steps.record.record import record

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def _config(url: str, *overrides: str):
    config = load_config(None, ["dataset.val_fraction=0.25", "dataset.test_fraction=0.25", *overrides])
    config.database.url = url  # as TRAINYARD_DATABASE_URL gives it: never a config value
    return config


def _rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with Database(url).transaction() as tx:
        return tx.query(sql, params)


def _count(url: str, sql: str) -> int:
    return _rows(url, sql)[0][0]


def test_record_sqlite_round_trip_and_rerecord(sample_repo: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    result = record(_config(url), str(sample_repo))
    assert result.version == "datasets/v1" and result.created and result.skipped == 0
    assert result.counts == {"train": 6, "val": 3, "test": 3}
    assert "plate" in result.categories
    assert "datasets/v1" in vcs.remote_tags(str(sample_repo), "datasets/*")
    assert _count(url, "SELECT COUNT(*) FROM training_datasets") == 1
    assert _count(url, "SELECT COUNT(*) FROM annotation_images") == 12
    assert _rows(url, "SELECT split, COUNT(*) FROM dataset_images GROUP BY split ORDER BY split") == [
        ("test", 3), ("train", 6), ("val", 3)]
    # The tag is on a commit holding the dataset's .dvc file, which is the one in the database.
    (commit, md5), = _rows(url, "SELECT git_commit, dvc_md5 FROM training_datasets")
    assert vcs.git(sample_repo, "rev-parse", "datasets/v1^{commit}").strip() == commit
    assert f"md5: {md5}" in vcs.git(sample_repo, "show", "datasets/v1:dataset.dvc")

    # A fresh checkout pulls the data back from the DVC remote: disjoint splits, every image there.
    with checkout_dataset(str(sample_repo), "datasets/v1", "dataset") as data:
        names = {split: {i["file_name"] for i in json.loads((data / f"{split}.json").read_text())["images"]}
                 for split in ("train", "val", "test")}
        assert sum(map(len, names.values())) == 12 and len(set().union(*names.values())) == 12
        assert all((data / "images" / n).is_file() for split in names.values() for n in split)
        assert json.loads((data / "report.json").read_text())["images"] == 12

    # Recording again is a no-op returning the same version.
    again = record(_config(url), str(sample_repo), "annotations/v1")
    assert again.version == result.version and not again.created and again.counts == result.counts
    assert _count(url, "SELECT COUNT(*) FROM training_datasets") == 1


def test_bad_files_fail_cleanly_then_skip_records_the_rest(sample_repo: Path, tmp_path: Path) -> None:
    annotations = sample_repo / "annotations"
    (annotations / "broken.json").write_text("{ not json")
    doc = json.loads((annotations / "plate_0000.json").read_text())
    doc["imageWidth"] += 1  # no longer the image's size
    (annotations / "plate_0000.json").write_text(json.dumps(doc))
    # A labelme labels file in the annotations fixes the category order.
    labels = ["plate", *sorted({s["label"] for p in annotations.glob("plate_*.json")
                                for s in json.loads(p.read_text())["shapes"]} - {"plate"}, reverse=True)]
    (annotations / "labels.txt").write_text("\n".join(["__ignore__", "_background_", *labels]) + "\n")
    commit_annotations(sample_repo, "annotations", "annotations/v2")
    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"

    # The step as the workflow runs it: one error naming every bad file, no traceback, nothing recorded.
    done = subprocess.run(
        [sys.executable, "-m", "steps.record", "--repo", str(sample_repo), "--annotation-version", "annotations/v2",
         ],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120,
        env={**os.environ, "TRAINYARD_DATABASE_URL": url},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"error: {sample_repo}@annotations/v2: 2 of 13 labelme files are invalid")
    assert "  broken.json: not valid JSON" in done.stderr
    assert "  plate_0000.json: imageWidth x imageHeight is 321x240" in done.stderr
    assert "dataset.on_invalid=skip" in done.stderr and "Traceback" not in done.stderr
    assert "datasets/v2" not in vcs.remote_tags(str(sample_repo), "datasets/*")
    assert _count(url, "SELECT COUNT(*) FROM training_datasets") == 0

    result = record(_config(url, "dataset.on_invalid=skip"), str(sample_repo), "annotations/v2")
    assert result.created and result.skipped == 2 and sum(result.counts.values()) == 11
    assert result.categories == labels
    skipped = _rows(url, "SELECT file, reason FROM skipped_annotations ORDER BY file")
    assert [file for file, _ in skipped] == ["broken.json", "plate_0000.json"]
    assert skipped[0][1].startswith("not valid JSON at line 1")
    (settings,) = _rows(url, "SELECT settings FROM training_datasets")[0]
    assert json.loads(settings)["labels_source"] == "annotations/labels.txt"
    with checkout_dataset(str(sample_repo), "datasets/v2", "dataset") as data:
        report = json.loads((data / "report.json").read_text())
        assert report["skipped"] == [{"file": file, "reason": reason} for file, reason in skipped]
        assert [c["name"] for c in json.loads((data / "train.json").read_text())["categories"]] == labels


def test_a_failed_tag_push_leaves_no_rows_and_no_tag(sample_repo: Path, tmp_path: Path) -> None:
    # The remote refuses the push (its hooks never run for us: tests/test_dataset_repo_is_data.py).
    vcs.git(sample_repo, "config", "receive.maxInputSize", "1")
    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    with pytest.raises(ExternalError, match="git push tag datasets/v1 failed"):
        record(_config(url), str(sample_repo))
    assert vcs.remote_tags(str(sample_repo), "datasets/*") == []
    assert _count(url, "SELECT COUNT(*) FROM training_datasets") == 0
    assert _count(url, "SELECT COUNT(*) FROM annotation_images") == 0
    vcs.git(sample_repo, "config", "--unset", "receive.maxInputSize")  # once it accepts, the version records
    assert record(_config(url), str(sample_repo)).created


def test_unknown_annotation_version_names_the_tags(sample_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"annotations/v9.*annotations/v1"):
        record(_config(f"sqlite:///{tmp_path / 'm.sqlite'}"), str(sample_repo), "annotations/v9")


WEIRD_NAME = """O'Brien "plate"; DROP TABLE training_datasets; --.jpg"""
WEIRD_LABEL = """'); DELETE FROM annotation_images; -- 번호판 % ?"""


@pytest.fixture(params=["sqlite", "postgres"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.sqlite'}"
    return request.getfixturevalue("fresh_postgres")


def test_names_with_quotes_and_sql_are_stored_verbatim(any_database: str) -> None:
    db = Database(any_database)
    db.migrate()
    row = DatasetRow("datasets/it's", "annotations/it's", "c0ffee", "abc.dir", {"train": 1, "val": 0, "test": 0},
                     [WEIRD_LABEL], {"labels": [WEIRD_LABEL]}, skipped=((f"sub/{WEIRD_NAME}.json", f"label {WEIRD_LABEL!r}"),))
    image = ImageRow(WEIRD_NAME, 40, 30, "0" * 64, 2, [WEIRD_LABEL, WEIRD_LABEL], "train")
    with db.transaction() as tx:
        insert_dataset(tx, row, [image])
    with db.transaction() as tx:
        found = find_dataset(tx, "datasets/it's")
        stored = tx.query("SELECT file_name, labels FROM annotation_images WHERE file_name = ?", (WEIRD_NAME,))
        skipped = tx.query("SELECT file, reason FROM skipped_annotations")
    assert found is not None and found["categories"] == [WEIRD_LABEL] and found["skipped"] == 1
    assert stored == [(WEIRD_NAME, json.dumps([WEIRD_LABEL], ensure_ascii=False))]
    assert skipped == [(f"sub/{WEIRD_NAME}.json", f"label {WEIRD_LABEL!r}")]


# --- hostile parameters: nothing a user passes reaches git or DVC as an option ------------------------

def _record_cli(*args: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "steps.record", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TRAINYARD_DATABASE_URL": url})


def test_a_repo_or_version_that_looks_like_an_option_runs_nothing(sample_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    done = _record_cli("--repo", f"--upload-pack=touch {marker};true", url=url)
    assert done.returncode == 2 and not marker.exists()
    assert done.stderr.startswith("error: dataset repo '--upload-pack=touch /") and done.stderr.endswith(
        "': starts with '-', which git would read as an option; give a git URL or a path (write ./-name for a local "
        "folder whose name starts with '-')\n") and done.stderr.count("\n") == 1
    for args in (["--annotation-version=-x"], ["--set", "dataset.annotation_version=--upload-pack=touch x"]):
        done = _record_cli("--repo", str(sample_repo), *args, url=url)
        assert done.returncode == 2 and done.stderr.startswith("error: annotation version '-") and \
            "starts with '-', which git would read as an option" in done.stderr and done.stderr.count("\n") == 1
    done = _record_cli("--repo", str(sample_repo), "--annotation-version", "annotations/v1 x", url=url)
    assert done.stderr == "error: annotation version 'annotations/v1 x': not a valid git tag name; give a tag such " \
                          "as annotations/v3\n"
    # A transport that runs a command is refused by git itself, whatever the URL says.
    with pytest.raises(ExternalError, match="transport 'ext' not allowed"):
        vcs.remote_tags(f"ext::sh -c touch% {marker}")
    assert not marker.exists()
    with pytest.raises(ConfigError, match="annotation version '-x'"):
        commit_annotations(sample_repo, "annotations", "-x")


def test_failure_reasons_are_the_real_cause_without_advice_or_banners(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(ExternalError) as info:
        vcs.remote_tags(str(missing))
    assert str(info.value) == (
        f"git ls-remote {missing} failed (exit 128): '{missing}' does not appear to be a git repository")
    with pytest.raises(ExternalError,
                       match=rf"git clone {missing} failed \(exit 128\): repository '{missing}' does not exist$"):
        vcs.checkout(str(missing), "annotations/v1", tmp_path / "clone")

    repo = tmp_path / "repo"
    (tmp_path / "a-file").write_text("not a folder")
    init_dataset_repo(repo, remote=str(tmp_path / "a-file" / "store"))  # a DVC remote that cannot exist
    with pytest.raises(ExternalError) as info:
        vcs.dvc_pull(repo, "nothing")
    assert str(info.value) == ("dvc pull nothing failed (exit 1): failed to pull data from the cloud - 'nothing' does "
                               "not exist as an output or a stage name in 'dvc.yaml': 'dvc.yaml' does not exist")
    (repo / "data").mkdir()
    (repo / "data" / "x.txt").write_text("x")
    with pytest.raises(ExternalError) as info:
        vcs.dvc_add_and_push(repo, "data")
    assert str(info.value).startswith("dvc push data failed (exit 255): unexpected error - [Errno 20] Not a directory")
    assert "troubles" not in str(info.value) and "\n" not in str(info.value)


def test_failure_reason_picks_the_cause_line() -> None:
    git_push = ("remote: error: tags are frozen\nTo /srv/data.git\n ! [remote rejected] datasets/v1 -> datasets/v1 "
                "(pre-receive hook declined)\nerror: failed to push some refs to '/srv/data.git'\n")
    assert vcs.failure_reason(git_push) == "tags are frozen"
    assert vcs.failure_reason("hint: Updates were rejected\nhint: see git help\n") == "no output"
    assert vcs.failure_reason("") == "no output"
    assert vcs.failure_reason("ERROR: " + "x" * 1000).endswith("...")


# --- item 2: the dataset folders stay inside the checkout ---------------------------------------------

def test_dataset_dir_outside_the_checkout_leaves_the_victim_alone(sample_repo: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    done = _record_cli("--repo", str(sample_repo), "--set", f"dataset.dataset_dir={victim}", url=url)
    assert done.returncode == 2 and done.stderr.startswith(
        f"error: defaults + --set: dataset.dataset_dir: '{victim}' is absolute; give a folder inside the "
        "dataset repo")
    # The same through a symlink committed into an annotation version.
    (sample_repo / "dataset").symlink_to(victim)
    vcs.git(sample_repo, "add", "dataset")
    vcs.git(sample_repo, "commit", "--quiet", "-m", "a dataset folder that is a link")
    vcs.git(sample_repo, "tag", "annotations/v2")
    with pytest.raises(InputError, match=rf"dataset\.dataset_dir 'dataset' leads out of the dataset repo through the "
                                         rf"symlink dataset \(to {victim}\)"):
        record(_config(url), str(sample_repo), "annotations/v2")
    with pytest.raises(InputError, match=r"@annotations/v2: dataset leads out of the dataset repo through the symlink"):
        with checkout_dataset(str(sample_repo), "annotations/v2", "dataset"):
            pass  # what train does with a dataset version
    # DVC appends to .gitignore: committed as a symlink, it would write to a host file.
    vcs.git(sample_repo, "rm", "--quiet", "dataset")
    (sample_repo / ".gitignore").unlink()
    (sample_repo / ".gitignore").symlink_to(victim / "precious.txt")
    vcs.git(sample_repo, "add", ".gitignore")
    vcs.git(sample_repo, "commit", "--quiet", "-m", "a .gitignore that is a link")
    vcs.git(sample_repo, "tag", "annotations/v3")
    with pytest.raises(InputError, match=r"@annotations/v3: \.gitignore leads out of the dataset repo through the "
                                         r"symlink \.gitignore"):
        record(_config(url), str(sample_repo), "annotations/v3")
    assert [p.name for p in victim.iterdir()] == ["precious.txt"] and (victim / "precious.txt").read_text() == "keep me"


# --- issue 9 item 8: which tags are versions ----------------------------------------------------------

def test_only_v_and_a_number_are_versions(sample_repo: Path, capsys: pytest.CaptureFixture) -> None:
    tags = ["annotations/v10", "annotations/v9", "annotations/v3-fix", "annotations/draft", "annotations/v2.1",
            "annotations/v٣"]
    assert vcs.version_tags(tags, "annotations/") == (
        ["annotations/v9", "annotations/v10"], ["annotations/v3-fix", "annotations/draft", "annotations/v2.1",
                                                "annotations/v٣"])
    for tag in ("annotations/v3-fix", "annotations/draft"):
        vcs.git(sample_repo, "tag", tag)
    from steps.record.record import _newest_annotation_version

    assert _newest_annotation_version(str(sample_repo)) == "annotations/v1"
    assert "ignoring 2 tag(s) that are not versions (annotations/v<number>) when looking for the newest: " \
           "annotations/draft, annotations/v3-fix" in capsys.readouterr().out
    vcs.git(sample_repo, "tag", "--delete", "annotations/v1")
    with pytest.raises(InputError, match=r"no annotations/v<number> tag \(not versions: annotations/draft, "
                                         r"annotations/v3-fix\)"):
        vcs.newest_tag(str(sample_repo), "annotations/")


def test_a_repo_that_asks_dvc_for_symlinks_still_records(sample_repo: Path, tmp_path: Path) -> None:
    # With cache.type symlink, DVC would check the annotations out as links into .dvc/cache, out of
    # the annotation folder that reads are confined to; record's checkout asks for copies.
    vcs.dvc(sample_repo, "config", "cache.type", "symlink")
    vcs.git(sample_repo, "add", ".dvc/config")
    vcs.git(sample_repo, "commit", "--quiet", "-m", "link the cache")
    vcs.git(sample_repo, "tag", "annotations/v2")
    result = record(_config(f"sqlite:///{tmp_path / 'meta.sqlite'}"), str(sample_repo), "annotations/v2")
    assert result.created and result.skipped == 0 and sum(result.counts.values()) == 12


def test_a_git_server_that_never_answers_fails_the_step_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real `git ls-remote` against a server that accepts the connection and says nothing: only
    the deadline ends it (the message comes from the timeout path alone)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    monkeypatch.setenv("TRAINYARD_VCS_TIMEOUT", "2")
    try:
        with pytest.raises(ExternalError, match=r"did not finish within 2 s \(TRAINYARD_VCS_TIMEOUT\)"):
            vcs.remote_tags(f"http://127.0.0.1:{server.getsockname()[1]}/dataset.git", "annotations/v1")
    finally:
        server.close()


def test_the_vcs_deadline_must_be_a_positive_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINYARD_VCS_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="TRAINYARD_VCS_TIMEOUT='soon': give a positive number of seconds"):
        vcs.run(["git", "--version"], None, "git --version")


def test_a_tag_another_database_knows_is_never_moved(sample_repo: Path, tmp_path: Path) -> None:
    first = f"sqlite:///{tmp_path / 'first.sqlite'}"
    assert record(_config(first), str(sample_repo)).created
    tagged = vcs.git(sample_repo, "rev-parse", "refs/tags/datasets/v1").strip()

    with pytest.raises(InputError, match=r"datasets/v1 is tagged in .* by record for another database \(database "
                                         r"[0-9a-f]{32}\), which knows it as its dataset: the tag is never moved"):
        record(_config(f"sqlite:///{tmp_path / 'second.sqlite'}"), str(sample_repo))
    assert vcs.git(sample_repo, "rev-parse", "refs/tags/datasets/v1").strip() == tagged
    assert not record(_config(first), str(sample_repo)).created  # the first database's dataset is intact


def _splits(url: str, version: str) -> dict[str, str]:
    return dict(_rows(url, "SELECT a.file_name, d.split FROM dataset_images d JOIN annotation_images a ON a.id = d.image_id "
                           "JOIN training_datasets t ON t.id = d.dataset_id WHERE t.version = ?", (version,)))


def test_splits_live_with_the_data_so_two_fresh_databases_agree(sample_repo: Path, tmp_path: Path) -> None:
    # v1 is recorded into database A; the dataset repo (its tags, the ledger at datasets/v1) is
    # then copied, as another machine would clone it. v2 adds images. Database A and a fresh
    # database B, each recording v2 on its own copy, give every image the same split, and the
    # v1 images keep theirs: the split comes from the repo, not from whichever database records.
    from steps.record.split_ledger import ledger_name
    from steps.datasets.sample_data import generate_sample

    first, second = f"sqlite:///{tmp_path / 'a.sqlite'}", f"sqlite:///{tmp_path / 'b.sqlite'}"
    record(_config(first), str(sample_repo), "annotations/v1")
    v1 = _splits(first, "datasets/v1")
    ledger = json.loads(vcs.git(sample_repo, "show", f"datasets/v1:{ledger_name('dataset')}"))
    assert ledger == {"images": v1}
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(sample_repo, elsewhere, symlinks=True)
    for repo in (sample_repo, elsewhere):  # the same 8 new images, committed in each copy
        generate_sample(repo / "annotations", num_images=20, seed=3)
        commit_annotations(repo, "annotations", "annotations/v2")

    record(_config(first), str(sample_repo), "annotations/v2")
    record(_config(second), str(elsewhere), "annotations/v2")
    in_a, in_b = _splits(first, "datasets/v2"), _splits(second, "datasets/v2")
    assert len(in_a) == 20 and in_a == in_b
    assert {name: in_b[name] for name in v1} == v1
    assert json.loads(vcs.git(elsewhere, "show", f"datasets/v2:{ledger_name('dataset')}")) == {"images": in_b}


def test_a_ledger_that_is_not_one_is_refused_by_name(tmp_path: Path) -> None:
    from steps.record.split_ledger import parse

    for text in ("[1", '{"images": {"a.jpg": "holdout"}}', '["a.jpg"]'):
        with pytest.raises(InputError, match=r"datasets/v3:dataset.splits.json: "):
            parse(text, "datasets/v3:dataset.splits.json")
    assert parse('{"images": {"a.jpg": "val"}}', "x") == {"a.jpg": "val"}
