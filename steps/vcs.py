"""git and DVC, driven through their real command lines.

The dataset repo holds annotation versions and training datasets in one git history, told apart
by tags (`annotations/v1`, `datasets/v1`); the data itself lives in a DVC remote (a folder
locally, `gs://...` on a cluster).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from steps.errors import ExternalError, InputError

# Commits made by the pipeline carry this identity unless git is configured otherwise.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "trainyard",
    "GIT_AUTHOR_EMAIL": "trainyard@localhost",
    "GIT_COMMITTER_NAME": "trainyard",
    "GIT_COMMITTER_EMAIL": "trainyard@localhost",
}
# gcsfs otherwise probes a gRPC endpoint for 60 s on every call (see docs/datasets.md).
_GCS_DEFAULTS = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
# Against an emulator there is no metadata server to ask for credentials; on GKE there is, and
# Workload Identity needs it, so the check is only skipped when an emulator is configured.
_EMULATOR_DEFAULTS = {"NO_GCE_CHECK": "true"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    defaults = {**_IDENTITY, **_GCS_DEFAULTS}
    if env.get("STORAGE_EMULATOR_HOST"):
        defaults.update(_EMULATOR_DEFAULTS)
    for key, value in defaults.items():
        env.setdefault(key, value)
    env["GIT_TERMINAL_PROMPT"] = "0"  # fail instead of hanging on a password prompt
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def run(cmd: list[str], cwd: Path | None, what: str) -> str:
    """Run a command; on failure raise ExternalError with its last meaningful output line."""
    try:
        done = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    except FileNotFoundError:
        raise ExternalError(f"{what}: {cmd[0]!r} is not installed") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr + "\n" + done.stdout).splitlines() if ln.strip()]
        detail = next((ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else "")
        raise ExternalError(f"{what} failed (exit {done.returncode}): {detail}")
    return done.stdout


def git(repo: Path, *args: str, what: str | None = None) -> str:
    return run(["git", *args], repo, what or f"git {args[0]}")


def dvc(repo: Path, *args: str, what: str | None = None) -> str:
    # `python -m dvc` uses the DVC of this interpreter, whatever PATH holds.
    return run([sys.executable, "-m", "dvc", *args], repo, what or f"dvc {args[0]}")


def remote_tags(repo_url: str, pattern: str = "*") -> list[str]:
    """Tag names on the remote matching a glob, e.g. `annotations/*`."""
    out = run(["git", "ls-remote", "--tags", "--refs", repo_url, f"refs/tags/{pattern}"], None, f"git ls-remote {repo_url}")
    return sorted(line.split("refs/tags/", 1)[1] for line in out.splitlines() if "refs/tags/" in line)


def newest_tag(repo_url: str, prefix: str) -> str:
    """The highest version under a prefix (`annotations/v10` sorts after `annotations/v9`)."""
    tags = remote_tags(repo_url, f"{prefix}*")
    if not tags:
        raise InputError(f"{repo_url}: no {prefix}* tag; tag an annotation version first (git tag {prefix}v1)")
    return max(tags, key=_version_key)


def _version_key(tag: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in tag.replace("/v", "/").replace(".", "/").split("/"))


def checkout(repo_url: str, tag: str, dest: Path) -> str:
    """Clone `repo_url` into `dest` at `tag`; returns the commit. Names the tags on offer when absent."""
    run(["git", "clone", "--quiet", "--no-checkout", repo_url, str(dest)], None, f"git clone {repo_url}")
    known = git(dest, "tag", "--list").split()
    if tag not in known:
        offered = ", ".join(sorted(known)) or "none"
        raise InputError(f"{repo_url}: version {tag!r} not found (tags: {offered})")
    git(dest, "-c", "advice.detachedHead=false", "checkout", "--quiet", tag)
    return git(dest, "rev-parse", "HEAD").strip()


def dvc_pull(repo: Path, target: str) -> None:
    dvc(repo, "pull", "--quiet", target, what=f"dvc pull {target}")


def dvc_add_and_push(repo: Path, target: str) -> str:
    """Track `target` with DVC, push its data to the remote, and return its md5."""
    dvc(repo, "add", "--quiet", target, what=f"dvc add {target}")
    dvc(repo, "push", "--quiet", f"{target}.dvc", what=f"dvc push {target}")
    meta = yaml.safe_load((repo / f"{target}.dvc").read_text())
    return str(meta["outs"][0]["md5"])


def commit_and_tag(repo: Path, paths: list[str], message: str, tag: str) -> str:
    """Commit `paths` and create an annotated tag on the new commit; returns the commit."""
    git(repo, "add", "--", *paths)
    git(repo, "commit", "--quiet", "-m", message)
    git(repo, "tag", "-a", tag, "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def push_tag(repo: Path, tag: str) -> None:
    """Push only the tag (and the commit it points at): no branch of the dataset repo moves."""
    git(repo, "push", "--quiet", "origin", f"refs/tags/{tag}", what=f"git push tag {tag}")


def delete_remote_tag(repo: Path, tag: str) -> None:
    git(repo, "push", "--quiet", "origin", f":refs/tags/{tag}", what=f"git push --delete {tag}")
