"""What a dataset repo's committed DVC settings may decide: where its data lives, nothing more.

A dataset repo is data. Whoever can push to it must not configure the DVC that record, train,
evaluate and test run in its checkout: no cache or site cache outside the checkout (DVC would
write there), no credentials file, key file or command of the host (DVC would read or run it).
Settings that could steer DVC that way are refused by name, except the cache and the site cache,
which are ours in any case (`.dvc/config.local` overrides the committed `.dvc/config`): a repo
whose author committed the cache folder of their machine still records, into our cache.
"""

from __future__ import annotations

from pathlib import Path

from steps.errors import InputError

# Settings a committed `.dvc/config` may hold, per section. A remote's are how to reach it (its URL,
# an endpoint, a region, anonymous access), never a file or a program; credentials come from the
# pod's identity or the environment.
_CORE = {"remote", "autostage", "check_update", "analytics", "no_scm", "hardlink_lock", "interactive", "checksum_jobs",
         "site_cache_dir"}  # overridden below
_REMOTE = {"url", "endpointurl", "allow_anonymous_login", "projectname", "region", "version_aware", "worktree",
           "jobs", "checksum_jobs", "use_ssl", "read_timeout", "connect_timeout", "timeout", "verify",
           "listobjects", "no_traverse"}
_BOOLEAN_ONLY = {"ssl_verify"}  # a string there is a CA bundle file of the host
# Sections that are ours in any case (overridden below) or that the commands we run never read.
_IGNORED = {"cache", "state", "index", "feature", "parsing", "plots", "exp"}
_MAX_CONFIG_BYTES = 1024 * 1024


def use_our_dvc_settings(clone: Path, where: str) -> None:
    """Refuse a checkout whose `.dvc/` holds a symlink or whose `.dvc/config` steers DVC out of
    the checkout; then give DVC our own cache and site cache inside it, files copied, not linked
    (annotations are read confined to their folder: a link into the cache would lead out of it)."""
    dvc_dir = clone / ".dvc"
    if not dvc_dir.exists() and not dvc_dir.is_symlink():
        return
    links = _symlinks(dvc_dir)
    if links:
        shown = ".dvc" if links[0] == dvc_dir else f".dvc/{links[0].relative_to(dvc_dir)}"
        raise InputError(f"{where}: {shown} is a committed symlink; a dataset repo's .dvc folder holds files only "
                         "(remove it)")
    config = dvc_dir / "config"
    if config.is_file():
        _check(config, where)
    (dvc_dir / "config.local").write_text(
        "[cache]\n"
        f"    dir = {dvc_dir.resolve() / 'cache'}\n"
        "    type = reflink,copy\n"
        "[core]\n"
        f"    site_cache_dir = {dvc_dir.resolve() / 'tmp' / 'site-cache'}\n"
    )


def _symlinks(folder: Path) -> list[Path]:
    if folder.is_symlink():
        return [folder]
    return sorted(path for path in folder.rglob("*") if path.is_symlink())  # rglob does not follow them


def _check(config: Path, where: str) -> None:
    from configobj import ConfigObj, ConfigObjError  # DVC's own reader of this file

    raw = config.read_bytes()[: _MAX_CONFIG_BYTES + 1]
    if len(raw) > _MAX_CONFIG_BYTES:
        raise InputError(f"{where}: .dvc/config is larger than 1 MiB; not a DVC config")
    try:
        parsed = ConfigObj(raw.decode("utf-8").splitlines(), interpolation=False, list_values=False)
    except (ConfigObjError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: .dvc/config is not a DVC config ({str(exc).splitlines()[0][:120]})") from None
    for section, settings in parsed.items():
        name = section.split('"')[0].strip()
        if name in _IGNORED:
            continue
        allowed = _CORE if name == "core" else _REMOTE | _BOOLEAN_ONLY if name == "remote" else None
        if allowed is None or not isinstance(settings, dict):
            _refuse(where, section, "")
        for key, value in settings.items():
            if key not in allowed or (key in _BOOLEAN_ONLY and str(value).strip().lower() not in ("true", "false")):
                _refuse(where, section, key)


def _refuse(where: str, section: str, key: str) -> None:
    setting = f"[{section}] {key}".strip()
    raise InputError(
        f"{where}: .dvc/config sets {setting[:80]!r}, which a dataset repo may not: it could make DVC read, write "
        "or run something outside the checkout. Remove it; a dataset repo's DVC config names its remote (url, "
        "endpointurl, region, ...) and nothing else, and credentials come from the environment"
    )
