"""A container's `volumeMounts` on this machine.

- an `emptyDir` volume (the template's `volumes` or the workflow's) is a folder of the pod, empty
  when the pod starts: `<task>/volumes/<name>`;
- a volume of `spec.volumeClaimTemplates` is the PersistentVolumeClaim the controller creates for
  the run (operator.go createPVCs) and every pod of the run shares: `<run>/volumes/<name>`;
- `subPath` mounts that folder's sub folder (made when missing, as the kubelet does).

Every other kind (an existing claim, a ConfigMap, a Secret, a host path, ...) is the cluster's:
refused by name.
"""

from __future__ import annotations

from pathlib import Path

from workflows.local.podfs import PodFS
from workflows.local.templating import NodeError, NotSupported, TemplateError, substitute

VOLUME_KINDS_HERE = {"emptyDir"}


def mount_volumes(container: dict, template: dict, spec: dict, pod: PodFS, task_dir: Path, run_dir: Path,
                  where: str, values: dict[str, str | None] | None = None) -> None:
    """Mount each of the container's volumes in `pod`; its fields are templates, as in a pod spec."""
    volumes = {v.get("name"): v for v in [*(spec.get("volumes") or []), *(template.get("volumes") or [])]}
    claims = {(c.get("metadata") or {}).get("name") for c in spec.get("volumeClaimTemplates") or []}
    for index, mount in enumerate(container.get("volumeMounts") or []):
        at = f"{where}.volumeMounts[{index}]"
        mount = {k: substitute(v, values or {}, f"{at}.{k}") if isinstance(v, str) else v for k, v in mount.items()}
        name, path = mount.get("name"), mount.get("mountPath")
        if not name or not path:
            raise TemplateError(f"{at}: a volume mount needs a name and a mountPath")
        if name in claims:
            folder = run_dir / "volumes" / name
        elif name in volumes:
            kind = next((k for k in volumes[name] if k != "name"), "nothing")
            if kind not in VOLUME_KINDS_HERE:
                raise NotSupported(f"{at}: volume {name!r} is a {kind} volume, which lives in the cluster: not "
                                   "supported by the local runner (emptyDir and volumeClaimTemplates are)")
            folder = task_dir / "volumes" / name
        else:
            # Kubernetes refuses the pod (`spec.containers[0].volumeMounts[0].name: Not found`): Error.
            raise NodeError(f"{at}.name: no volume {name!r} in the template's or the workflow's volumes")
        sub = str(mount.get("subPath") or "").strip("/")
        if sub:
            if ".." in sub.split("/"):
                raise TemplateError(f"{at}.subPath: {sub!r} must not contain '..'")
            folder = folder / sub
        folder.mkdir(parents=True, exist_ok=True)
        pod.mount(path, folder)
