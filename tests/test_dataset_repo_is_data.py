"""A dataset repo is data: what is committed to it (DVC settings, symlinks under .dvc/) and the
hooks of a local one never configure or run our tools, and prune never follows a link out of
the runs folder."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from steps.datasets import vcs
from steps.config import Config, load_config
from steps.errors import InputError
from steps.record.record import record
from workflows.cli import main as trainyard

pytestmark = pytest.mark.integration


def _config(tmp_path: Path) -> Config:
    config = load_config(None, ["dataset.val_fraction=0.25", "dataset.test_fraction=0.25"])
    config.database.url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    return config


def _commit_version(repo: Path, message: str, tag: str = "annotations/v2") -> None:
    vcs.git(repo, "add", "--all", "--force", "--", ".dvc")
    vcs.git(repo, "commit", "--quiet", "-m", message)
    vcs.git(repo, "tag", tag)


def _files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("committed", [
    ("symlink", "tmp"), ("symlink", "cache"), ("symlink", "config"),
    ("setting", "['remote \"gcs\"']\n    url = gs://bucket/dvc\n    credentialpath = {outside}/key.json\n"),
    ("setting", "['remote \"web\"']\n    url = https://example.com/dvc\n    bearer_token_command = touch {outside}/ran\n"),
    ("setting", "['remote \"web\"']\n    url = https://example.com/dvc\n    ssl_verify = {outside}/ca.pem\n"),
    ("setting", "[studio]\n    token = x\n"),
    ("setting", "['machine \"m\"']\n    startup_script = {outside}/run.sh\n"),
], ids=["link-tmp", "link-cache", "link-config", "credentialpath", "command", "ca-file", "studio", "machine"])
def test_committed_dvc_settings_and_links_never_reach_the_host(committed: tuple[str, str], sample_repo: Path,
                                                              tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    kind, what = committed
    if kind == "symlink":
        target = sample_repo / ".dvc" / what
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        target.symlink_to(outside)
    else:
        with (sample_repo / ".dvc" / "config").open("a") as config:
            config.write(what.format(outside=outside))
    _commit_version(sample_repo, f"hostile .dvc: {what}")

    said = "is a committed symlink" if kind == "symlink" else "which a dataset repo may not"
    with pytest.raises(InputError, match=said):
        record(_config(tmp_path), str(sample_repo), "annotations/v2")
    assert _files_in(outside) == [], "nothing written outside the checkout"
    assert vcs.remote_tags(str(sample_repo), "datasets/*") == []


def test_a_committed_cache_of_another_machine_is_ignored_and_nothing_is_written_there(sample_repo: Path,
                                                                                     tmp_path: Path) -> None:
    # What an author's repo may carry: their cache folder, site cache and link type (all ours instead).
    outside = tmp_path / "authors-machine"
    vcs.dvc(sample_repo, "config", "cache.dir", str(outside / "cache"))
    vcs.dvc(sample_repo, "config", "cache.type", "symlink")
    vcs.dvc(sample_repo, "config", "core.site_cache_dir", str(outside / "site"))
    _commit_version(sample_repo, "the author's cache")
    result = record(_config(tmp_path), str(sample_repo), "annotations/v2")
    assert result.created and result.skipped == 0 and sum(result.counts.values()) == 12
    assert _files_in(outside) == []


def test_pushing_the_tag_to_a_local_repo_runs_none_of_its_hooks(sample_repo: Path, tmp_path: Path) -> None:
    ran = tmp_path / "hooks-ran"
    hooks = sample_repo / ".git" / "hooks"
    for name in ("pre-receive", "update", "post-receive", "post-update", "reference-transaction", "push-to-checkout"):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\necho {name} >> {ran}\n")
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    vcs.git(sample_repo, "config", "core.hooksPath", str(hooks))  # a repo's own config cannot bring them back

    result = record(_config(tmp_path), str(sample_repo), "annotations/v1")

    assert result.created and vcs.remote_tags(str(sample_repo), "datasets/*") == ["datasets/v1"]
    assert not ran.exists(), ran.read_text() if ran.exists() else ""


@pytest.mark.parametrize("url", ["/data/plates", "./plates", "plates", "file:///data/plates", "../a:b"])
def test_local_repo_urls_are_told_from_remote_ones(url: str) -> None:
    assert vcs.is_local(url)


@pytest.mark.parametrize("url", ["git@github.com:org/plates.git", "https://github.com/org/plates.git",
                                 "ssh://git@host/plates.git", "host:plates"])
def test_remote_repo_urls_are_not_local(url: str) -> None:
    assert not vcs.is_local(url)


def test_prune_never_follows_a_symlink_out_of_the_runs_folder(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    runs, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    (elsewhere / "models" / "precious-model").mkdir(parents=True)
    (elsewhere / "models" / "precious-model" / "model.pth").write_bytes(b"weights")
    (elsewhere / "old-run").mkdir()
    runs.mkdir()
    (runs / "registry").symlink_to(elsewhere)  # registry/models is elsewhere/models
    (runs / "local-20200101-000000").symlink_to(elsewhere / "old-run")
    for name in ("local-20200102-000000", "local-20200103-000000"):
        (runs / name).mkdir()

    assert trainyard(["prune", "--runs-dir", str(runs), "--keep", "1", "--models", "--yes"]) == 0
    out = capsys.readouterr().out
    assert (elsewhere / "models" / "precious-model" / "model.pth").read_bytes() == b"weights"
    assert (elsewhere / "old-run").is_dir()
    assert "keeping" in out and "symlink" in out
    assert sorted(p.name for p in runs.iterdir()) == ["local-20200101-000000", "local-20200103-000000", "registry"]
