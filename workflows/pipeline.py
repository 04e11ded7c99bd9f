"""The `trainyard-pipeline` WorkflowTemplate: record -> train -> evaluate -> test.

This Hera object is the only definition of the workflow: the golden YAML, the Helm chart, what
`trainyard submit` sends and what `trainyard run --local` executes are all generated from it.

Every step is a container template running `python -m steps.<name>` with explicit arguments, so
the command line that runs in a pod is the one that runs on a laptop. Files a step reads or
writes live under `WORK_ROOT`; the local runner maps that folder to the run's directory.
"""

from __future__ import annotations

from hera.workflows import (
    DAG,
    Artifact,
    Container,
    NoneArchiveStrategy,
    Parameter,
    Resources,
    SecretEnv,
    WorkflowTemplate,
)
from hera.workflows import models as m

from workflows.images import step_image

PIPELINE_NAME = "trainyard-pipeline"
WORK_ROOT = "/work"
OUT = f"{WORK_ROOT}/outputs"
IN = f"{WORK_ROOT}/inputs"

# Workflow parameters users set with `argo submit -p name=value` (or `trainyard run --local -p`).
WORKFLOW_PARAMETERS = {
    "dataset-repo": ("", "git URL of the dataset repo (annotations + training datasets, DVC-tracked)"),
    "annotation-version": ("", "annotation tag to record, e.g. annotations/v3; empty: the newest"),
    "config": ("configs/cluster.yaml", "pipeline config file inside the step images"),
    "overrides": ("", "config overrides, space-separated KEY=VALUE, e.g. 'train.iterations=500'"),
}
# Where GPU steps land (GKE labels its accelerator nodes with `cloud.google.com/gke-accelerator`).
GPU_NODE_SELECTOR = {"cloud.google.com/gke-accelerator": "nvidia-l4"}
GPU_TOLERATIONS = [m.Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]
DATABASE_SECRET = ("trainyard-database", "url")


def _inputs(*names: str) -> list[Parameter]:
    return [Parameter(name=name) for name in names]


def _config_args() -> list[str]:
    return ["--config", "{{inputs.parameters.config}}", "--set-list", "{{inputs.parameters.overrides}}"]


def _database_env() -> list[SecretEnv]:
    name, key = DATABASE_SECRET
    return [SecretEnv(name="TRAINYARD_DATABASE_URL", secret_name=name, secret_key=key)]


def _folder(name: str, path: str) -> Artifact:
    # Unarchived: the Argo UI can browse the folder and show its index.html / report.html.
    return Artifact(name=name, path=path, archive=NoneArchiveStrategy())


def _output_parameter(name: str) -> Parameter:
    return Parameter(name=name, value_from=m.ValueFrom(path=f"{OUT}/{name}"))


def _gpu_step(**kwargs) -> Container:
    return Container(
        resources=Resources(cpu_request="4", memory_request="16Gi", gpus=1),
        node_selector=GPU_NODE_SELECTOR,
        tolerations=GPU_TOLERATIONS,
        **kwargs,
    )


def record_template() -> Container:
    return Container(
        name="record",
        image=step_image("record"),
        command=["python", "-m", "steps.record"],
        args=[
            "--repo", "{{inputs.parameters.dataset-repo}}",
            "--annotation-version", "{{inputs.parameters.annotation-version}}",
            *_config_args(),
            "--output-version", f"{OUT}/dataset-version",
        ],
        inputs=_inputs("dataset-repo", "annotation-version", "config", "overrides"),
        outputs=[_output_parameter("dataset-version")],
        env=_database_env(),
        resources=Resources(cpu_request="1", memory_request="2Gi"),
    )


def train_template() -> Container:
    return _gpu_step(
        name="train",
        image=step_image("train"),
        command=["python", "-m", "steps.train"],
        args=[
            "--repo", "{{inputs.parameters.dataset-repo}}",
            "--dataset-version", "{{inputs.parameters.dataset-version}}",
            *_config_args(),
            "--output", f"{OUT}/train",
        ],
        inputs=_inputs("dataset-repo", "dataset-version", "config", "overrides"),
        outputs=[_folder("checkpoints", f"{OUT}/train")],
    )


def evaluate_template() -> Container:
    return _gpu_step(
        name="evaluate",
        image=step_image("evaluate"),
        command=["python", "-m", "steps.evaluate"],
        args=[
            "--repo", "{{inputs.parameters.dataset-repo}}",
            "--dataset-version", "{{inputs.parameters.dataset-version}}",
            *_config_args(),
            "--checkpoints", f"{IN}/train",
            "--run-id", "{{workflow.name}}",
            "--output", f"{OUT}/evaluation",
            "--output-promoted", f"{OUT}/promoted",
            "--output-model-uri", f"{OUT}/model-uri",
        ],
        inputs=[*_inputs("dataset-repo", "dataset-version", "config", "overrides"), Artifact(name="checkpoints", path=f"{IN}/train")],
        outputs=[_folder("evaluation", f"{OUT}/evaluation"), _output_parameter("promoted"), _output_parameter("model-uri")],
        env=_database_env(),
    )


def test_template() -> Container:
    return Container(
        name="test",
        image=step_image("test"),
        command=["python", "-m", "steps.test"],
        args=[
            "--repo", "{{inputs.parameters.dataset-repo}}",
            "--dataset-version", "{{inputs.parameters.dataset-version}}",
            *_config_args(),
            "--model", "production",
            "--output", f"{OUT}/report",
        ],
        inputs=_inputs("dataset-repo", "dataset-version", "config", "overrides"),
        outputs=[_folder("report", f"{OUT}/report")],
        resources=Resources(cpu_request="2", memory_request="8Gi"),
    )


def _pass(*names: str) -> dict[str, str]:
    return {name: f"{{{{workflow.parameters.{name}}}}}" for name in names}


def build_pipeline() -> WorkflowTemplate:
    dataset_version = {"dataset-version": "{{tasks.record.outputs.parameters.dataset-version}}"}
    common = _pass("dataset-repo", "config", "overrides")
    with WorkflowTemplate(
        name=PIPELINE_NAME,
        entrypoint="pipeline",
        labels={"app.kubernetes.io/name": "trainyard", "app.kubernetes.io/component": "pipeline"},
        annotations={"workflows.argoproj.io/description": "Record, train, evaluate and test a Mask R-CNN model."},
        arguments=[Parameter(name=name, value=value, description=text) for name, (value, text) in WORKFLOW_PARAMETERS.items()],
    ) as template:
        record, train, evaluate, test = record_template(), train_template(), evaluate_template(), test_template()
        with DAG(name="pipeline"):
            record_task = record(name="record", arguments={**common, **_pass("annotation-version")})
            train_task = train(name="train", arguments={**common, **dataset_version})
            evaluate_task = evaluate(
                name="evaluate",
                arguments=[
                    *[Parameter(name=k, value=v) for k, v in {**common, **dataset_version}.items()],
                    m.Artifact(name="checkpoints", from_="{{tasks.train.outputs.artifacts.checkpoints}}"),
                ],
            )
            test_task = test(name="test", arguments={**common, **dataset_version})
            record_task >> train_task >> evaluate_task >> test_task
    return template
