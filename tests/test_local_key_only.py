"""Key-only artifacts in the local runner: each fan-out pod writes an object under a key of its own,
one consumer reads the whole prefix as a folder, in folder mode and against the GCS emulator.

Argo v4.1.2: a template artifact with only `gcs.key` takes the bucket of the default artifact
repository (workflow/executor/executor.go `newDriverArt` -> `ArtifactLocation.Relocate`; the
controller adds that repository in workflow/controller/workflowpod.go `addArchiveLocation`); an
output is saved at exactly its key (executor.go `saveArtifactFromFile` skips the keyFormat when the
artifact `HasKey`), so a retried pod overwrites its own object; an input lists every object whose
name starts with the key (workflow/artifacts/gcs/gcs.go `downloadObjects`, `listByPrefix`) and
places each at the input path + the rest of its name: a prefix arrives as a folder. No object at
all fails the init container: the node is Error (controller/operator.go `inferFailedReason`).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from hera.workflows import DAG, Artifact, Container, GCSArtifact, NoneArchiveStrategy, Parameter, WorkflowTemplate

from workflows.local import LocalRunner
from workflows.local.artifacts import BucketArtifacts

WRITE = ("import json, pathlib, sys; out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True); "
         "(out / 'scores.json').write_text(json.dumps({'group': sys.argv[2]}))")
LIST = ("import json, pathlib, sys; root = pathlib.Path(sys.argv[1]); out = pathlib.Path(sys.argv[2]); "
        "out.mkdir(parents=True, exist_ok=True); "
        "(out / 'seen.json').write_text(json.dumps(sorted(p.relative_to(root).as_posix() for p in root.rglob('*') "
        "if p.is_file())))")
KEY = "trainyard/{{workflow.name}}/scores"


def _manifest(groups: list[str], key: str = KEY) -> dict:
    with WorkflowTemplate(name="t", entrypoint="main") as w:
        write = Container(
            name="write", image="x", command=["python", "-c", WRITE],
            args=["/work/outputs/group-scores", "{{inputs.parameters.group}}"], inputs=[Parameter(name="group")],
            outputs=[GCSArtifact(name="group-scores", path="/work/outputs/group-scores", archive=NoneArchiveStrategy(),
                                 key=KEY + "/{{inputs.parameters.group}}")],
        )
        read = Container(
            name="read", image="x", command=["python", "-c", LIST], args=["/work/inputs/scores", "/work/outputs/seen"],
            inputs=[GCSArtifact(name="scores", path="/work/inputs/scores", archive=NoneArchiveStrategy(), key=key)],
            outputs=[Artifact(name="seen", path="/work/outputs/seen", archive=NoneArchiveStrategy())],
        )
        with DAG(name="main"):
            write(name="write", with_items=groups, arguments={"group": "{{item}}"}) >> read(name="read")
    return w.to_dict()


def _seen(result) -> list[str]:
    return json.loads((result.tasks["read"].artifacts["seen"] / "seen.json").read_text())


def test_a_prefix_of_objects_arrives_as_one_folder(tmp_path: Path) -> None:
    result = LocalRunner(_manifest(["g0", "g1", "g2"]), tmp_path / "run-1", {}, echo=lambda _: None).run()
    assert result.succeeded
    assert _seen(result) == ["g0/scores.json", "g1/scores.json", "g2/scores.json"]
    assert (tmp_path / "run-1" / "objects" / "trainyard" / "run-1" / "scores" / "g1" / "scores.json").is_file()


def test_a_prefix_with_no_object_fails_the_consumer_as_argos_init_container_does(tmp_path: Path) -> None:
    result = LocalRunner(_manifest(["g0"], key="trainyard/{{workflow.name}}/nothing"), tmp_path / "run-1", {},
                         echo=lambda _: None).run()
    assert result.tasks["read"].status == "Error"
    assert result.tasks["read"].message == ("init: Error (exit code 1): artifact scores failed to load: no results for "
                                           "key: trainyard/run-1/nothing")


def test_the_prefix_is_a_string_prefix_as_in_gcs(tmp_path: Path) -> None:
    # gcs.go listByPrefix lists by the key as given, without a trailing slash: `scores` also
    # matches `scores-late/...`, which lands at <path>/-late/... (filepath.Join of the rest).
    manifest = _manifest(["g0"])
    write = next(t for t in manifest["spec"]["templates"] if t["name"] == "write")
    write["outputs"]["artifacts"][0]["gcs"]["key"] = "trainyard/{{workflow.name}}/scores-late/{{inputs.parameters.group}}"
    result = LocalRunner(manifest, tmp_path / "run-1", {}, echo=lambda _: None).run()
    assert _seen(result) == ["-late/g0/scores.json"]


def test_key_only_objects_go_through_the_bucket(tmp_path: Path, gcs_emulator) -> None:
    from google.cloud import storage as gcs

    bucket = f"artifacts-{uuid.uuid4().hex[:8]}"
    gcs_emulator.make_bucket(bucket)
    store = BucketArtifacts(f"gs://{bucket}/prefix", "trainyard/{{workflow.name}}/{{pod.name}}")
    result = LocalRunner(_manifest(["g0", "g1"]), tmp_path / "run-1", {}, echo=lambda _: None, artifacts=store).run()
    assert result.succeeded
    names = {b.name for b in gcs.Client.create_anonymous_client().list_blobs(bucket)}
    assert {"prefix/trainyard/run-1/scores/g0/scores.json", "prefix/trainyard/run-1/scores/g1/scores.json"} <= names
    assert _seen(result) == ["g0/scores.json", "g1/scores.json"]
    assert not (tmp_path / "run-1" / "objects").exists()  # read from the bucket, not from a local copy


def test_a_rerun_of_a_group_overwrites_its_own_object(tmp_path: Path) -> None:
    # The key names the group, not the pod: a retried or re-run pod writes the same object again.
    runner = LocalRunner(_manifest(["g0", "g0"]), tmp_path / "run-1", {}, echo=lambda _: None)
    assert _seen(runner.run()) == ["g0/scores.json"]


def test_a_hostile_object_name_cannot_leave_the_input_folder(tmp_path: Path) -> None:
    from steps.errors import InputError
    from workflows.local.artifacts import LocalObjects

    objects = LocalObjects(tmp_path / "objects")
    (tmp_path / "objects" / "k").mkdir(parents=True)
    (tmp_path / "objects" / "k" / "a.json").write_text("{}")
    assert objects.load_prefix("k", tmp_path / "in") and (tmp_path / "in" / "a.json").is_file()
    with pytest.raises(InputError, match="not a plain relative path"):
        objects.save(tmp_path / "objects" / "k", "../outside")
