"""What the `argo` CLI takes from the kubeconfig when ARGO_NAMESPACE / ARGO_TOKEN are not set.

The argo CLI (cmd/argo/commands/client/conn.go, `Namespace` and `GetAuthString`) uses the current
context's namespace (`default` when it names none) and the current user's credentials as a bearer
token: a static `token`, a `tokenFile`, or an `exec` credential plugin such as GKE's
`gke-gcloud-auth-plugin`, which prints an ExecCredential whose `status.token` is the token.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from steps.errors import ConfigError

EXEC_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class KubeContext:
    namespace: str
    user: dict[str, Any]
    source: str  # the kubeconfig file(s), for messages

    def token(self) -> str | None:
        """`Bearer <token>` from the context's user, or None when it has no token-style credential."""
        if self.user.get("token"):
            return f"Bearer {self.user['token']}"
        if self.user.get("tokenFile"):
            try:
                return f"Bearer {Path(self.user['tokenFile']).read_text().strip()}"
            except OSError as exc:
                raise ConfigError(f"{self.source}: tokenFile {self.user['tokenFile']}: {exc.strerror}; "
                                  "set ARGO_TOKEN or fix the kubeconfig") from None
        if isinstance(self.user.get("exec"), dict):
            return f"Bearer {_exec_token(self.user['exec'], self.source)}"
        return None


def _files(environ: Mapping[str, str]) -> list[Path]:
    listed = environ.get("KUBECONFIG", "")
    if listed:
        return [Path(p) for p in listed.split(os.pathsep) if p]
    return [Path(environ.get("HOME", str(Path.home()))) / ".kube" / "config"]


def _named(entries: Any, name: str, field: str) -> dict[str, Any] | None:
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("name") == name and isinstance(entry.get(field), dict):
            return entry[field]
    return None


def current_context(environ: Mapping[str, str] = os.environ) -> KubeContext | None:
    """The current context, merged over the kubeconfig files as kubectl does (first one wins), or
    None without a kubeconfig."""
    docs = []
    for path in _files(environ):
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: not a readable kubeconfig ({str(exc).splitlines()[0][:120]}); "
                              "fix it or set ARGO_NAMESPACE and ARGO_TOKEN") from None
        if isinstance(loaded, dict):
            docs.append(loaded)
    if not docs:
        return None
    source = os.pathsep.join(str(p) for p in _files(environ))
    name = next((d["current-context"] for d in docs if d.get("current-context")), None)
    if not name:
        return KubeContext("default", {}, source)
    context = next((c for d in docs if (c := _named(d.get("contexts"), name, "context")) is not None), {})
    user_name = context.get("user", "")
    user = next((u for d in docs if (u := _named(d.get("users"), user_name, "user")) is not None), {})
    return KubeContext(str(context.get("namespace") or "default"), user, source)


def _exec_token(spec: dict[str, Any], source: str) -> str:
    command = spec.get("command")
    if not isinstance(command, str) or not command:
        raise ConfigError(f"{source}: the user's exec credential plugin has no command; set ARGO_TOKEN")
    args = [str(a) for a in spec.get("args") or []]
    env = {**os.environ, **{str(e["name"]): str(e.get("value", "")) for e in spec.get("env") or [] if isinstance(e, dict) and "name" in e}}
    try:
        done = subprocess.run([command, *args], capture_output=True, text=True, timeout=EXEC_TIMEOUT_SECONDS, env=env)
    except FileNotFoundError:
        raise ConfigError(f"{source}: credential plugin {command!r} is not installed; install it or set ARGO_TOKEN") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{source}: credential plugin {command!r} did not answer within {EXEC_TIMEOUT_SECONDS}s; "
                          "set ARGO_TOKEN") from None
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [""])[-1][:200]
        raise ConfigError(f"{source}: credential plugin {command!r} failed ({said}); set ARGO_TOKEN")
    try:
        token = json.loads(done.stdout)["status"]["token"]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        raise ConfigError(f"{source}: credential plugin {command!r} gave no token; set ARGO_TOKEN")
    return token
