"""The main container of a pod template: a `container` as given, or a `script` as Argo runs it.

operator.go executeScript: the script's `source` is written by the init container to
/argo/staging/script (common.ExecutorScriptSourcePath) and that path is appended to the
container's args, so `command: [python]` runs `python /argo/staging/script`. Locally the
source is the file `script` in the step's folder, and the staging path maps to it.
"""

from __future__ import annotations

from pathlib import Path

from workflows.local.podfs import PodFS
from workflows.local.templating import substitute

SCRIPT_SOURCE_PATH = "/argo/staging/script"
SCRIPT_FIELDS = {"source"}


def pod_container(template: dict, task_dir: Path, pod: PodFS, values: dict[str, str | None]) -> dict:
    """The container to run for a container or script template (`pod` mounts the staging path);
    the source is substituted as the rest of the template is, its container paths rewritten."""
    if "container" in template:
        return template["container"]
    script = template["script"]
    container = {k: v for k, v in script.items() if k not in SCRIPT_FIELDS}
    if script.get("source"):
        source = task_dir / "script"
        text = substitute(str(script["source"]), values, f"template {template['name']!r}.script.source")
        pod.mount(SCRIPT_SOURCE_PATH, source)
        source.write_text(pod.rewrite(text))
        source.chmod(0o755)  # executor.go StageFiles writes the script with mode 0755
        container["args"] = [*script.get("args", []), SCRIPT_SOURCE_PATH]
    return container
