"""The local runner on small Hera-built templates whose containers run `python -c` one-liners."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hera.workflows import DAG, Artifact, Container, Parameter, RetryStrategy, SecretEnv, WorkflowTemplate
from hera.workflows import models as m

from workflows.local import LocalRunner
from workflows.local.templating import TemplateError

WRITE = "import sys, pathlib; p = pathlib.Path(sys.argv[2]); p.parent.mkdir(parents=True, exist_ok=True); p.write_text(sys.argv[1])"
COPY = ("import sys, pathlib; src = pathlib.Path(sys.argv[1]) / 'data.txt'; out = pathlib.Path(sys.argv[2]); "
        "out.mkdir(parents=True, exist_ok=True); (out / 'data.txt').write_text(src.read_text() + '+copied')")
MAKE = "import sys, pathlib; out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True); (out / 'data.txt').write_text(sys.argv[2])"


def _manifest(when: str | None = None, retry: int | None = None, fail_first: bool = False) -> dict:
    with WorkflowTemplate(name="t", entrypoint="main",
                          arguments=[Parameter(name="greeting", value="hello"), Parameter(name="who")]) as w:
        produce = Container(
            name="produce", image="x", command=["python", "-c", WRITE],
            args=["{{inputs.parameters.text}}-{{workflow.parameters.who}}", "/work/outputs/value"],
            inputs=[Parameter(name="text")],
            outputs=[Parameter(name="value", value_from=m.ValueFrom(path="/work/outputs/value"))],
        )
        make = Container(
            name="make", image="x", command=["python", "-c", MAKE], args=["/work/out/folder", "{{inputs.parameters.v}}"],
            inputs=[Parameter(name="v")], outputs=[Artifact(name="folder", path="/work/out/folder")],
        )
        flaky_code = ("import os, pathlib, sys; m = pathlib.Path(sys.argv[1]); "
                      "sys.exit(0) if m.exists() else (m.write_text('x'), sys.exit(3))")
        copy = Container(
            name="copy", image="x", command=["python", "-c", COPY if not fail_first else flaky_code],
            args=["/work/in/folder", "/work/out/copied"] if not fail_first else ["{{inputs.parameters.marker}}"],
            inputs=[Artifact(name="folder", path="/work/in/folder"), Parameter(name="marker", value="unused")],
            # The flaky variant writes nothing: its artifact is optional (a missing one is an Error).
            outputs=[Artifact(name="copied", path="/work/out/copied", optional=fail_first or None)],
            retry_strategy=RetryStrategy(limit=str(retry)) if retry is not None else None,
            env=[SecretEnv(name="TOKEN", secret_name="creds", secret_key="token")],
        )
        with DAG(name="main"):
            a = produce(name="a", arguments={"text": "{{workflow.parameters.greeting}}"})
            b = make(name="b", arguments={"v": "{{tasks.a.outputs.parameters.value}}"})
            c = copy(name="c", arguments=[m.Artifact(name="folder", from_="{{tasks.b.outputs.artifacts.folder}}"),
                                           Parameter(name="marker", value="{{workflow.parameters.who}}")],
                     when=when)
            a >> b >> c
    return w.to_dict()


def _runner(manifest: dict, tmp_path: Path, **params: str) -> LocalRunner:
    lines: list[str] = []
    runner = LocalRunner(manifest, tmp_path / "run-1", {"who": "world", **params}, secrets={("creds", "token"): "s3cret"},
                         echo=lines.append)
    runner.lines = lines  # type: ignore[attr-defined]
    return runner


def test_parameters_artifacts_and_outputs_flow_through_the_dag(tmp_path: Path) -> None:
    result = _runner(_manifest(), tmp_path).run()
    assert result.succeeded
    assert result.tasks["a"].parameters == {"value": "hello-world"}
    copied = result.tasks["c"].artifacts["copied"] / "data.txt"
    assert copied.read_text() == "hello-world+copied"
    assert copied.is_relative_to(tmp_path / "run-1" / "c")


def test_progress_names_each_task_in_order(tmp_path: Path) -> None:
    runner = _runner(_manifest(), tmp_path)
    runner.run()
    starts = [line for line in runner.lines if line.startswith("[") and line.endswith(("a", "b", "c"))]
    assert starts == ["[1/3] a", "[2/3] b", "[3/3] c"]


def test_when_false_skips_the_task(tmp_path: Path) -> None:
    manifest = _manifest(when="'{{tasks.a.outputs.parameters.value}}' == nope")
    result = _runner(manifest, tmp_path).run()
    assert result.tasks["c"].status == "Skipped" and result.succeeded


def test_retry_strategy_limit_retries_a_failed_step(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    ok = _runner(_manifest(retry=1, fail_first=True), tmp_path, who=str(marker)).run()
    assert ok.tasks["c"].status == "Succeeded"
    marker.unlink()
    failed = _runner(_manifest(retry=None, fail_first=True), tmp_path / "again", who=str(marker)).run()
    assert failed.tasks["c"].status == "Failed" and not failed.succeeded


def test_missing_workflow_parameter_and_unknown_parameter_are_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="'who' has no default"):
        LocalRunner(_manifest(), tmp_path / "r", {}, echo=lambda _: None)
    with pytest.raises(TemplateError, match="-p colour: not a parameter"):
        LocalRunner(_manifest(), tmp_path / "r", {"who": "x", "colour": "red"}, echo=lambda _: None)


def test_unsupported_fields_are_refused_with_their_path(tmp_path: Path) -> None:
    manifest = _manifest()
    manifest["spec"]["templates"][0]["sidecars"] = [{"name": "s", "image": "x"}]
    with pytest.raises(TemplateError, match=r"spec\.templates\[0\]\.sidecars: not supported"):
        _runner(manifest, tmp_path)


def test_unknown_variable_is_a_refusal_not_an_empty_string(tmp_path: Path) -> None:
    # A refusal found mid-run ends that task Error, labelled, and the run ends as a run does.
    manifest = _manifest()
    manifest["spec"]["templates"][0]["container"]["args"][0] = "{{workflow.parameters.nope}}"
    result = _runner(manifest, tmp_path).run()
    assert result.tasks["a"].status == "Error" and result.phase == "Error"
    assert result.tasks["a"].message.startswith("refused by the local runner: ")
    assert "unknown variable {{workflow.parameters.nope}}" in result.refusals[0]
    assert result.tasks["b"].status == "Omitted"


def test_secret_without_a_local_value_is_named(tmp_path: Path) -> None:
    result = LocalRunner(_manifest(), tmp_path / "r", {"who": "x"}, secrets={}, echo=lambda _: None).run()
    assert "no local value for secret creds/token" in result.tasks["c"].message and result.refusals


def test_retry_expression_retries_only_matching_exit_codes(tmp_path: Path) -> None:
    # GIVEN a step that fails once with exit 3, then succeeds
    manifest = _manifest(retry=2, fail_first=True)
    copy = next(t for t in manifest["spec"]["templates"] if t["name"] == "copy")
    # WHEN the retry expression only admits exit 143 (preemption) THEN exit 3 is not retried
    copy["retryStrategy"]["expression"] = "lastRetry.status == 'Error' || asInt(lastRetry.exitCode) == 143"
    marker = tmp_path / "m1"
    assert _runner(manifest, tmp_path / "a", who=str(marker)).run().tasks["c"].status == "Failed"
    # WHEN it admits exit 3 THEN the second attempt runs and succeeds
    copy["retryStrategy"]["expression"] = "asInt(lastRetry.exitCode) == 3"
    assert _runner(manifest, tmp_path / "b", who=str(tmp_path / "m2")).run().tasks["c"].status == "Succeeded"
    # lastRetry.duration is a string in Argo (operator.go buildRetryStrategyLocalScope), so comparing
    # it with a number is an expr runtime error: the Retry node becomes Error (operator.go executeTemplate)
    copy["retryStrategy"]["expression"] = "lastRetry.duration > 10"
    errored = _runner(manifest, tmp_path / "c", who=str(tmp_path / "m3")).run().tasks["c"]
    assert errored.status == "Error" and "mismatched types" in errored.message


def test_exit_handler_runs_after_a_failure_with_the_workflow_status(tmp_path: Path) -> None:
    manifest = _manifest(retry=None, fail_first=True)
    record = "import sys, pathlib; pathlib.Path(sys.argv[3]).write_text(sys.argv[1] + ' ' + sys.argv[2])"
    out = tmp_path / "r" / "exit.txt"  # in the runs folder: a path of this machine its steps share
    manifest["spec"]["onExit"] = "bye"
    manifest["spec"]["templates"].append({"name": "bye", "container": {
        "image": "x", "command": ["python", "-c", record],
        "args": ["{{workflow.status}}", "{{workflow.failures}}", str(out)]}})
    result = _runner(manifest, tmp_path / "r", who=str(tmp_path / "marker")).run()
    assert result.tasks["c"].status == "Failed" and result.tasks["bye"].status == "Succeeded"
    status, failures = out.read_text().split(" ", 1)
    assert status == "Failed" and json.loads(json.loads(failures))[0]["displayName"] == "c"  # strconv.Quote(json)


def test_users_config_and_overrides_parameters_reach_the_steps(tmp_path: Path) -> None:
    from workflows.local.run import plan_local_run

    config = tmp_path / "mine.yaml"
    config.write_text("train:\n  iterations: 3\n")
    plan = plan_local_run(None, ["train.batch_size=2"], {"config": str(config), "overrides": "train.iterations=7"},
                          tmp_path / "runs", str(tmp_path))
    assert plan.parameters["config"] == str(config)
    items = plan.parameters["overrides"].split()
    # the local registry folder first, then --set, then the user's -p overrides (later items win)
    assert items[0].startswith("promotion.registry=") and items[1:] == ["train.batch_size=2", "train.iterations=7"]
    default = plan_local_run(None, [], {}, tmp_path / "runs", str(tmp_path))
    assert default.parameters["config"].endswith("configs/local.yaml")


def test_the_header_never_shows_the_database_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workflows.local.run import plan_local_run

    monkeypatch.setenv("TRAINYARD_DATABASE_URL", "postgresql://trainyard:s3cretpw@db.internal:5432/trainyard")
    plan = plan_local_run(None, [], {}, tmp_path / "runs", str(tmp_path))
    assert plan.database.endswith("s3cretpw@db.internal:5432/trainyard")  # the steps still get it
    assert "s3cretpw" not in plan.header() and "db.internal" in plan.header()


@pytest.mark.integration
def test_artifacts_in_a_bucket_use_argos_keys(tmp_path: Path, gcs_emulator) -> None:
    # executor/executor.go saveArtifactFromFile + stageArchiveFile: <keyFormat>/<base name of the
    # path> for an unarchived artifact; artifacts/gcs/gcs.go uploadObjects: one object per file
    # under it; an artifact's own key-only `gcs.key` (a folder: ending in /) is kept as given.
    # The consumer reads its input back from the bucket.
    import uuid

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage as gcs

    from workflows.local.artifacts import BucketArtifacts
    from workflows.local.nodes import pod_name

    bucket = f"artifacts-{uuid.uuid4().hex[:8]}"
    gcs_emulator.make_bucket(bucket)
    manifest = _manifest()
    for template in manifest["spec"]["templates"]:
        for artifact in template.get("outputs", {}).get("artifacts", []):
            artifact["archive"] = {"none": {}}
            if artifact["name"] == "folder":
                artifact["gcs"] = {"key": "custom/{{workflow.name}}/folder/"}
    store = BucketArtifacts(f"gs://{bucket}/prefix", "trainyard/{{workflow.name}}/{{pod.name}}")
    runner = LocalRunner(manifest, tmp_path / "run-1", {"who": "world"}, secrets={("creds", "token"): "s"},
                         echo=lambda _: None, artifacts=store)
    result = runner.run()
    assert result.succeeded
    client = gcs.Client(credentials=AnonymousCredentials(), project="test", client_options={"api_endpoint": gcs_emulator.url})
    names = {blob.name for blob in client.list_blobs(bucket)}
    assert names == {"prefix/custom/run-1/folder/data.txt",
                     f"prefix/trainyard/run-1/{pod_name('run-1', 'run-1.c', 'copy')}/copied/data.txt"}
    # c's input came from the bucket, not from b's folder
    assert (tmp_path / "run-1" / "c" / "inputs" / "folder" / "data.txt").read_text() == "hello-world"
    assert (result.tasks["c"].artifacts["copied"] / "data.txt").read_text() == "hello-world+copied"
