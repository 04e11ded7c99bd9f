"""git and DVC, driven through their real command lines.

The dataset repo holds annotation versions and training datasets in one git history, told apart
by tags (`annotations/v1`, `datasets/v1`); the data itself lives in a DVC remote (a folder
locally, `gs://...` on a cluster).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from steps.errors import ConfigError, ExternalError, InputError, excerpt
from steps.redact import redact

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
    env["GIT_ALLOW_PROTOCOL"] = _ALLOWED_PROTOCOLS
    env["DVC_NO_ANALYTICS"] = "1"
    return env


# Transports git may use for a dataset repo. `ext::` runs a command and unknown ones may, so a repo
# URL from a parameter could otherwise start a program (git's own default also blocks `ext`).
_ALLOWED_PROTOCOLS = "file:git:http:https:ssh"
# Lines that a failing git or DVC prints around the real reason: git's advice, DVC's support banner.
_NOISE_PREFIXES = ("hint:", "Having any troubles?", "Please make sure you have the correct access rights",
                   "and the repository exists.")
# Lines that carry the reason, in git's and DVC's own words; the first one found is the cause.
_REASON_PREFIXES = ("fatal:", "error:", "ERROR:", "remote: fatal:", "remote: error:", "! [")
_REASON_CHARS = 300  # a reason longer than this is cut: it goes into a one-line error


def failure_reason(output: str) -> str:
    """The line of a failed git or DVC command that says why, without its advice and banners."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(_NOISE_PREFIXES)]
    reason = next((ln for ln in lines if ln.startswith(_REASON_PREFIXES)), lines[-1] if lines else "no output")
    for prefix in ("remote: ", "fatal: ", "error: ", "ERROR: "):
        reason = reason.removeprefix(prefix)
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 3] + "..."


def deadline_seconds() -> float:
    """The overall deadline of one git or DVC command (env TRAINYARD_VCS_TIMEOUT, default an hour):
    a server that stops answering fails the step instead of holding its pod forever."""
    raw = os.environ.get("TRAINYARD_VCS_TIMEOUT", "3600")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"TRAINYARD_VCS_TIMEOUT={raw[:40]!r}: give a positive number of seconds")
    return seconds


def run(cmd: list[str], cwd: Path | None, what: str) -> str:
    """Run a command; on failure raise ExternalError with the line of its output that says why.
    `what` names it in messages, redacted (git strips a URL's token from its own messages: so do we)."""
    what = redact(what)
    deadline = deadline_seconds()
    try:
        # A session of its own, so that a deadline stops git's helpers (ssh, remote-https) too.
        process = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True)
    except FileNotFoundError:
        raise ExternalError(f"{what}: {cmd[0]!r} is not installed") from None
    try:
        stdout, stderr = process.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ExternalError(f"{what} did not finish within {deadline:g} s (TRAINYARD_VCS_TIMEOUT); "
                            "check that the repo or DVC remote answers, or raise the deadline") from None
    except BaseException:  # SIGTERM/Ctrl-C while waiting: don't leave git running behind the step
        os.killpg(process.pid, signal.SIGKILL)
        raise
    if process.returncode != 0:
        reason = redact(failure_reason(f"{stderr}\n{stdout}"))
        raise ExternalError(f"{what} failed (exit {process.returncode}): {reason}")
    return stdout


def check_repo(repo_url: str) -> str:
    """A dataset repo URL or path that git cannot take for an option; returns it unchanged."""
    if not repo_url:
        raise ConfigError("no dataset repo: pass --repo or set dataset.repo")
    if repo_url.startswith("-"):
        raise ConfigError(
            f"dataset repo {_short(repo_url)}: starts with '-', which git would read as an option; give a git "
            "URL or a path (write ./-name for a local folder whose name starts with '-')"
        )
    if any(ch in repo_url for ch in "\n\r\0"):
        raise ConfigError(f"dataset repo {_short(repo_url)}: contains a line break or NUL; give a git URL or a path")
    return repo_url


# A tag becomes a workflow parameter and every later step's argument (`--dataset-version`): bounded.
MAX_TAG_CHARS = 200


def check_tag(tag: str, what: str = "version") -> str:
    """A tag name git accepts (`git check-ref-format`), of at most MAX_TAG_CHARS characters, that
    git cannot take for an option; returns it."""
    if len(tag) > MAX_TAG_CHARS:
        raise ConfigError(f"{what} {_short(tag)}: {len(tag):,} characters, more than {MAX_TAG_CHARS}; "
                          "give a tag such as annotations/v3")
    if tag.startswith("-"):
        raise ConfigError(f"{what} {_short(tag)}: starts with '-', which git would read as an option; "
                          "give a tag such as annotations/v3")
    if not tag or subprocess.run(["git", "check-ref-format", f"refs/tags/{tag}"], env=_env()).returncode != 0:
        raise ConfigError(f"{what} {_short(tag)}: not a valid git tag name; give a tag such as annotations/v3")
    return tag


def _short(value: str) -> str:
    return excerpt(value, 80)


def git(repo: Path, *args: str, what: str | None = None) -> str:
    return run(["git", *args], repo, what or f"git {args[0]}")


def dvc(repo: Path, *args: str, what: str | None = None) -> str:
    # `python -m dvc` uses the DVC of this interpreter, whatever PATH holds.
    return run([sys.executable, "-m", "dvc", *args], repo, what or f"dvc {args[0]}")


def remote_tags(repo_url: str, pattern: str = "*") -> list[str]:
    """Tag names on the remote matching a glob, e.g. `annotations/*`."""
    check_repo(repo_url)
    out = run(["git", "ls-remote", "--tags", "--refs", "--", repo_url, f"refs/tags/{pattern}"], None,
              f"git ls-remote {repo_url}")
    return sorted(line.split("refs/tags/", 1)[1] for line in out.splitlines() if "refs/tags/" in line)


def version_tags(tags: list[str], prefix: str) -> tuple[list[str], list[str]]:
    """(the version tags `<prefix>v<integer>` oldest first, the other tags under `prefix`).

    Only `v` and a whole number is a version: `annotations/v10` is newer than `annotations/v9`;
    `annotations/v3-fix` or `annotations/draft` can be recorded by name but are never "the newest".
    """
    versions, others = [], []
    for tag in tags:
        number = tag.removeprefix(prefix).removeprefix("v") if tag.startswith(f"{prefix}v") else ""
        (versions if number.isascii() and number.isdigit() else others).append(tag)
    return sorted(versions, key=lambda tag: int(tag[len(prefix) + 1:])), others


def newest_tag(repo_url: str, prefix: str) -> tuple[str, list[str]]:
    """The highest version under a prefix, and the tags under it that are not versions (to warn about)."""
    versions, others = version_tags(remote_tags(repo_url, f"{prefix}*"), prefix)
    if not versions:
        also = f" (not versions: {', '.join(others)})" if others else ""
        raise InputError(f"{redact(repo_url)}: no {prefix}v<number> tag{also}; tag an annotation version first "
                         f"(git tag {prefix}v1) or name one with --annotation-version")
    return versions[-1], others


def checkout(repo_url: str, tag: str, dest: Path) -> str:
    """Clone `repo_url` into `dest` at `tag`; returns the commit. Names the tags on offer when absent."""
    check_repo(repo_url)
    check_tag(tag)
    run(["git", "clone", "--quiet", "--no-checkout", "--", repo_url, str(dest)], None, f"git clone {repo_url}")
    known = git(dest, "tag", "--list").split()
    if tag not in known:
        offered = ", ".join(sorted(known)) or "none"
        raise InputError(f"{redact(repo_url)}: version {tag!r} not found (tags: {offered})")
    # `refs/tags/...` can never be read as an option or a path.
    git(dest, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", f"refs/tags/{tag}")
    return git(dest, "rev-parse", "HEAD").strip()


# DVC is run without --quiet: with it, DVC prints no reason at all when it fails.
def dvc_pull(repo: Path, target: str) -> None:
    dvc(repo, "pull", "--", target, what=f"dvc pull {target}")


def dvc_add_and_push(repo: Path, target: str) -> str:
    """Track `target` with DVC, push its data to the remote, and return its md5."""
    dvc(repo, "add", "--", target, what=f"dvc add {target}")
    dvc(repo, "push", "--", f"{target}.dvc", what=f"dvc push {target}")
    meta = yaml.safe_load((repo / f"{target}.dvc").read_text())
    return str(meta["outs"][0]["md5"])


def commit_and_tag(repo: Path, paths: list[str], message: str, tag: str) -> str:
    """Commit `paths` and create an annotated tag on the new commit; returns the commit."""
    check_tag(tag)
    git(repo, "add", "--", *paths)
    git(repo, "commit", "--quiet", "-m", message)
    git(repo, "tag", "-a", "-m", message, "--", tag)
    return git(repo, "rev-parse", "HEAD").strip()


def tag_subject(repo: Path, tag: str) -> str:
    """The first line of a local tag's message (of its commit's, for a lightweight tag)."""
    return git(repo, "tag", "--list", "--format=%(contents:subject)", "--", check_tag(tag)).strip()


def tag_message(repo: Path, tag: str) -> str:
    """The whole message of a local annotated tag."""
    return git(repo, "tag", "--list", "--format=%(contents)", "--", check_tag(tag))


def delete_local_tag(repo: Path, tag: str) -> None:
    git(repo, "tag", "--delete", "--", check_tag(tag))


def push_tag(repo: Path, tag: str) -> None:
    """Push only the tag (and the commit it points at): no branch of the dataset repo moves."""
    _push(repo, f"refs/tags/{check_tag(tag)}", f"git push tag {tag}")


# A dataset repo is data: pushing to one that is a local path runs git's receive-pack in it, which
# would run the hooks the repo holds (pre-receive, update, reference-transaction, ...) as us.
_RECEIVE_WITHOUT_HOOKS = "git -c core.hooksPath=/dev/null -c receive.autogc=false receive-pack"


def _push(repo: Path, refspec: str, what: str) -> None:
    origin = git(repo, "remote", "get-url", "origin").strip()
    local = [f"--receive-pack={_RECEIVE_WITHOUT_HOOKS}"] if is_local(origin) else []
    git(repo, "push", "--quiet", *local, "origin", refspec, what=what)


def is_local(url: str) -> bool:
    """Whether git reaches `url` on this machine (a path or file://), by git's own rule: a `:`
    before any `/` is scp-like ssh (host:path)."""
    if url.startswith("file://"):
        return True
    if "://" in url:
        return False
    colon, slash = url.find(":"), url.find("/")
    return colon < 0 or 0 <= slash < colon


def remote_tag_object(repo: Path, tag: str) -> str | None:
    """The object a tag names on `origin` (for an annotated tag, the tag object), or None."""
    out = git(repo, "ls-remote", "--tags", "origin", f"refs/tags/{check_tag(tag)}", what=f"git ls-remote {tag}")
    return out.split()[0] if out.strip() else None


def delete_remote_tag(repo: Path, tag: str) -> None:
    _push(repo, f":refs/tags/{check_tag(tag)}", f"git push --delete {tag}")
