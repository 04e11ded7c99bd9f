"""Pod templates that need a cluster to behave as on one, found before anything runs: refused by name.

- a node selector for an operating system or a CPU architecture this machine is not
  (`kubernetes.io/os: windows`, `kubernetes.io/arch: arm64` on an amd64 machine): no node here
  can run the pod (on a cluster without such a node it stays Pending);
- a step that runs `kubectl`: it acts on the cluster's API server, which a local run has not.
"""

from __future__ import annotations

import platform
import re

from workflows.local.templating import NotSupported

_OS_LABELS = ("kubernetes.io/os", "beta.kubernetes.io/os")
_ARCH_LABELS = ("kubernetes.io/arch", "beta.kubernetes.io/arch")
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_KUBECTL = re.compile(r"(?:^|[\s;&|(`'\"/])kubectl(?:\s|$|[;&|)`'\"])")


def check(template: dict, spec: dict, where: str) -> None:
    selector = {**(spec.get("nodeSelector") or {}), **(template.get("nodeSelector") or {})}
    here_os = platform.system().lower()
    for label in _OS_LABELS:
        wanted = str(selector.get(label, "")).lower()
        if wanted and wanted not in ("linux", here_os):  # this machine stands in for a Linux node
            raise NotSupported(f"{where}.nodeSelector.{label}: {wanted!r}: no node of this kind here (a pod of "
                               "another operating system needs a cluster that has one)")
    here_arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    for label in _ARCH_LABELS:
        wanted = str(selector.get(label, "")).lower()
        if wanted and wanted != here_arch:
            raise NotSupported(f"{where}.nodeSelector.{label}: {wanted!r}: this machine is {here_arch} (the pod "
                               "needs a cluster with such a node)")
    main = template.get("container") or template.get("script") or {}
    text = " ".join(str(x) for x in [*(main.get("command") or []), *(main.get("args") or []), main.get("source", "")])
    if _KUBECTL.search(text):
        raise NotSupported(f"{where}: runs kubectl, which acts on the cluster's API server: not supported by the "
                           "local runner")
