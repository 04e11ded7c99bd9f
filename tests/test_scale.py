"""Past the demo's size: a 32-branch sweep and a 10-checkpoint pipeline, scored on 100 classes.

What grew with branches, checkpoints and classes used to reach select as one argument (the
aggregated `{{tasks.evaluate.outputs.parameters.scores}}`): Argo moves a pod whose args pass
128 KiB (`MaxEnvVarLen`, workflow/common/common.go) into a ConfigMap the controller creates first
(workflow/controller/workflowpod.go), which its default ClusterRole cannot, and the executor hands
any single arg past it to the program as `@<file>` (cmd/argoexec/commands/emissary.go). Here every
pod's arguments are resolved as Argo resolves them (each task's arguments, then the template's:
workflow/common/util.go `SubstituteParams`; a fan-out's children by dag.go `expandTask`, its
Succeeded children's outputs aggregated by operator.go `processAggregateNodeOutputs`), and the
scores take the cluster's path: each evaluate pod's object at its template's key-only `gcs.key`
(executor.go `saveArtifactFromFile`), select's input read back as one prefix from the GCS
emulator (artifacts/gcs/gcs.go `downloadObjects`), through the same code the local runner uses.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from steps.config import load_config
from steps.evaluate.evaluate import select_best
from steps.evaluate.groups import checkpoint_groups, write_branch, write_scores
from steps.metrics.summary import metric_keys
from steps.select.scores import partial, read_scores
from workflows.local.artifacts import BucketArtifacts
from workflows.local.fanout import aggregate, expand, parse_items
from workflows.local.template_io import input_parameters
from workflows.local.templating import substitute
from workflows.pipeline import build_pipeline
from workflows.sweep import build_sweep
from workflows.sweep_sets import MAX_BRANCHES, from_grid, parameter

MAX_ENV_VAR_LEN = 131072  # workflow/common/common.go MaxEnvVarLen (128 KiB)
RUN = "trainyard-sweep-x7k2p"
BRANCHES, CHECKPOINTS, CLASSES = MAX_BRANCHES, 10, 100


def _names(checkpoints: int) -> list[str]:
    return [f"model_{(i + 1) * 1000 - 1:07d}.pth" for i in range(checkpoints)]


def _metrics(classes: int, seed: int) -> dict[str, float]:
    """Every key evaluate writes for a dataset of `classes` classes (plate datasets: dv_mAP, EIR)."""
    categories = [{"id": 1, "name": "plate"}, *({"id": i + 2, "name": f"class-{i:03d}"} for i in range(classes - 1))]
    keys = sorted(metric_keys({"categories": categories}, load_config(None, []).evaluate))
    return {key: round(((seed * 7919 + index * 104729) % 10007) / 10007, 6) for index, key in enumerate(keys)}


def _manifest_values(manifest: dict[str, Any], extra: dict[str, str]) -> dict[str, str | None]:
    defaults = {p["name"]: p.get("value", "") for p in manifest["spec"]["arguments"]["parameters"]}
    return {**{f"workflow.parameters.{k}": v for k, v in defaults.items()}, "workflow.name": RUN,
            "workflow.namespace": "ml", "tasks.record.outputs.parameters.dataset-version": "datasets/v3", **extra}


class Pods:
    """The pods of one DAG task as Argo creates them: each child's inputs, args and template."""

    def __init__(self, manifest: dict[str, Any], values: dict[str, str | None]):
        self.templates = {t["name"]: t for t in manifest["spec"]["templates"]}
        self.tasks = {t["name"]: t for t in self.templates[manifest["spec"]["entrypoint"]]["dag"]["tasks"]}
        self.values = values

    def of(self, name: str) -> list[dict[str, Any]]:
        task = self.tasks[name]
        children = [{}]
        if "withParam" in task:
            items = parse_items(substitute(task["withParam"], self.values, name), name)
            children = [child.values for child in expand(name, items)]
        return [self._pod(task, child) for child in children]

    def _pod(self, task: dict[str, Any], item: dict[str, str]) -> dict[str, Any]:
        template = self.templates[task["template"]]
        values = {**self.values, **item}
        inputs = input_parameters(template, task.get("arguments", {}), values, task["name"])
        local = {**values, **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        args = [substitute(a, local, task["name"]) for a in template["container"]["args"]]
        # (the memoize key is the controller's, resolved before the pod: not part of this measure)
        resolved = json.loads(substitute(json.dumps({k: v for k, v in template.items() if k != "memoize"}), local,
                                         task["name"]))
        return {"inputs": inputs, "args": args, "template": resolved}


def _size(pod: dict[str, Any]) -> tuple[int, int]:
    """What workflowpod.go measures: the main container's args as JSON, and the template (ARGO_TEMPLATE)."""
    return len(json.dumps(pod["args"])), len(json.dumps(pod["template"], separators=(",", ":")))


def _sweep_pods(tmp_path: Path, branches: int, checkpoints: int) -> Pods:
    """The sweep with `branches` override sets, each branch's train pod done with `checkpoints`."""
    grid = from_grid(f"train.lr=[{','.join(f'0.{i + 1:03d}' for i in range(branches))}]")
    manifest = build_sweep().to_dict()
    pods = Pods(manifest, _manifest_values(manifest, {"workflow.parameters.sweep": parameter(grid)}))
    outputs = []
    for pod in pods.of("train"):
        folder = tmp_path / f"train-{branches}-{pod['inputs']['branch']}"
        for name in _names(checkpoints):
            (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
            (folder / "checkpoints" / name).write_bytes(b"")
        write_branch(folder, pod["inputs"]["branch"], pod["inputs"]["branch-overrides"],
                     f"gs://artifacts/trainyard/checkpoints/{RUN}-{pod['inputs']['branch']}", folder / "branch")
        outputs.append(("Succeeded", {"branch": (folder / "branch").read_text()}))
    pods.values["tasks.train.outputs.parameters.branch"] = aggregate(outputs)["branch"]
    pods.values.update({"tasks.train.status": "Succeeded", "tasks.evaluate.status": "Succeeded"})
    return pods


def _pipeline_pods(tmp_path: Path, checkpoints: int) -> Pods:
    folder = tmp_path / f"train-{checkpoints}"
    (folder / "checkpoints").mkdir(parents=True)
    for name in _names(checkpoints):
        (folder / "checkpoints" / name).write_bytes(b"")
    manifest = build_pipeline().to_dict()
    return Pods(manifest, _manifest_values(manifest, {
        "tasks.train.outputs.parameters.checkpoint-groups": json.dumps(checkpoint_groups(folder, 1)),
        "tasks.record.outputs.parameters.needs-training": "true", "tasks.evaluate.status": "Succeeded",
        "tasks.select.outputs.parameters.model-uri": "gs://models/registry/models/m-1"}))


def test_no_pods_arguments_grow_with_branches_checkpoints_or_classes(tmp_path: Path) -> None:
    small, large = _sweep_pods(tmp_path, 2, 1), _sweep_pods(tmp_path, BRANCHES, CHECKPOINTS)
    assert len(large.of("evaluate")) == BRANCHES
    # select: the same pod whatever the sweep's size (what it reads is a key prefix, not a list).
    assert small.of("select") == large.of("select")
    # The fan-out pods: each carries its own branch only (the same size but for the digits of its name).
    for task in ("train", "evaluate"):
        sizes = [_size(pod) for pod in large.of(task)]
        assert max(s for s, _ in sizes) - min(s for s, _ in sizes) <= 8, task
        assert max(_size(pod)[0] for pod in small.of(task)) >= max(s for s, _ in sizes) - 8, task
    one, ten = _pipeline_pods(tmp_path, 1), _pipeline_pods(tmp_path, CHECKPOINTS)
    assert one.of("select") == ten.of("select") and len(ten.of("evaluate")) == CHECKPOINTS
    assert {_size(pod) for pod in ten.of("evaluate")} == {_size(one.of("evaluate")[0])}
    for pods in (large, ten):
        for task in pods.tasks:
            for pod in pods.of(task):
                args, template = _size(pod)
                assert args < MAX_ENV_VAR_LEN // 16 and template < MAX_ENV_VAR_LEN // 4, (task, args, template)


def _write_and_upload(pods: Pods, store: BucketArtifacts, tmp_path: Path, rows_of) -> int:
    """Each evaluate pod's scores object, written as the step writes it and stored at its template's
    resolved key, as Argo's wait container (and the local runner) stores it. Returns the bytes."""
    total = 0
    for index, pod in enumerate(pods.of("evaluate")):
        [artifact] = [a for a in pod["template"]["outputs"]["artifacts"] if "gcs" in a]
        folder = tmp_path / "pods" / str(index)
        write_scores(folder / "scores.json", rows_of(pod))
        total += (folder / "scores.json").stat().st_size
        store.save(folder, store.key(artifact, pods.values, "evaluate"))
    return total


def _read_back(pods: Pods, store: BucketArtifacts, tmp_path: Path) -> list[dict]:
    [select] = pods.of("select")
    [artifact] = [a for a in select["template"]["inputs"]["artifacts"] if "gcs" in a]
    folder = tmp_path / "select" / "inputs" / "scores"
    assert store.load_prefix(artifact["gcs"]["key"], folder)
    assert select["args"][select["args"].index("--scores") + 1] == artifact["path"]  # what select is told to read
    return read_scores(folder)


def test_a_32_branch_sweep_of_10_checkpoints_on_100_classes_reaches_select(tmp_path: Path, gcs_emulator) -> None:
    bucket = f"artifacts-{uuid.uuid4().hex[:8]}"
    gcs_emulator.make_bucket(bucket)
    store = BucketArtifacts(f"gs://{bucket}", "trainyard/{{workflow.name}}/{{pod.name}}")
    pods = _sweep_pods(tmp_path, BRANCHES, CHECKPOINTS)

    def rows_of(pod: dict[str, Any]) -> list[dict]:
        branch = pod["inputs"]["branch"]
        return [{"checkpoint": name, "iteration": int(name[6:13]), "metrics": _metrics(CLASSES, int(branch[1:]) * 100 + i),
                 "branch": branch, "overrides": pod["inputs"]["branch-overrides"], "source": pod["inputs"]["source"]}
                for i, name in enumerate(_names(CHECKPOINTS))]

    written = _write_and_upload(pods, store, tmp_path, rows_of)
    rows = _read_back(pods, store, tmp_path)
    assert len(rows) == BRANCHES * CHECKPOINTS and {r["branch"] for r in rows} == {f"b{i}" for i in range(BRANCHES)}
    assert all(len(r["metrics"]) == len(_metrics(CLASSES, 0)) for r in rows)
    # As one argument, this would have been far past Argo's limit; as objects it is read as a folder.
    assert written > 20 * MAX_ENV_VAR_LEN
    best = select_best(rows, "segm/AP50-plate", "max", "segm/AP")
    assert best["metrics"]["segm/AP50-plate"] == max(r["metrics"]["segm/AP50-plate"] for r in rows)
    assert partial(rows, None, {"train": "Succeeded", "evaluate": "Succeeded"}) is None
    print(f"\nsweep {BRANCHES} x {CHECKPOINTS} x {CLASSES}: {written} bytes of scores in {BRANCHES} objects; "
          f"largest pod args {max(_size(p)[0] for t in pods.tasks for p in pods.of(t))} bytes")


def test_a_10_checkpoint_pipeline_on_100_classes_reaches_select(tmp_path: Path, gcs_emulator) -> None:
    bucket = f"artifacts-{uuid.uuid4().hex[:8]}"
    gcs_emulator.make_bucket(bucket)
    store = BucketArtifacts(f"gs://{bucket}/prefix", "trainyard/{{workflow.name}}/{{pod.name}}")
    pods = _pipeline_pods(tmp_path, CHECKPOINTS)

    def rows_of(pod: dict[str, Any]) -> list[dict]:
        return [{"checkpoint": name, "iteration": int(name[6:13]), "metrics": _metrics(CLASSES, int(name[6:13]))}
                for name in pod["inputs"]["checkpoint-group"].split(",")]

    _write_and_upload(pods, store, tmp_path, rows_of)
    # One pod's object missing (its pod failed after its retries): select reads the rest and says so.
    from google.cloud import storage as gcs

    client = gcs.Client.create_anonymous_client()
    [lost] = [b for b in client.list_blobs(bucket) if "/scores/model_0004999/" in b.name]
    lost.delete()
    rows = _read_back(pods, store, tmp_path)
    assert len(rows) == CHECKPOINTS - 1
    missing = partial(rows, _names(CHECKPOINTS), {"evaluate": "Failed"})
    assert missing is not None and missing.missing == ["model_0004999.pth"]


@pytest.mark.parametrize("retried", [True])
def test_a_retried_pod_overwrites_its_own_object(tmp_path: Path, gcs_emulator, retried: bool) -> None:
    # The key names the group, not the pod (pod names change with each retry): the second
    # attempt's object replaces the first's, and select never sees two.
    bucket = f"artifacts-{uuid.uuid4().hex[:8]}"
    gcs_emulator.make_bucket(bucket)
    store = BucketArtifacts(f"gs://{bucket}", "trainyard/{{workflow.name}}/{{pod.name}}")
    pods = _pipeline_pods(tmp_path, 2)
    for attempt in (0.1, 0.2):
        _write_and_upload(pods, store, tmp_path / str(attempt), lambda pod, a=attempt: [
            {"checkpoint": name, "iteration": int(name[6:13]), "metrics": {"segm/AP": a}}
            for name in pod["inputs"]["checkpoint-group"].split(",")])
    rows = _read_back(pods, store, tmp_path)
    assert [r["metrics"]["segm/AP"] for r in rows] == [0.2, 0.2]
