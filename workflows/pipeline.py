"""The `trainyard-pipeline` WorkflowTemplate: record -> train -> evaluate (fan-out) -> select -> test,
then notify.

This Hera object is the only definition of the workflow: the golden YAML, the Helm chart, what
`trainyard submit` sends and what `trainyard run --local` executes are all generated from it.

Every step is a container template running `python -m steps.<name>` with explicit arguments, so
the command line that runs in a pod is the one that runs on a laptop. Files a step reads or
writes live under `WORK_ROOT`; the local runner maps that folder to the run's directory.

Values that a cluster install changes (images, node pools, Secret names, security contexts, the
`/dev/shm` size) are constants here whose values equal the Helm chart's defaults; the chart
generator (workflows/chart.py) swaps exactly those fields for Helm values.
"""

from __future__ import annotations

import json

from hera.workflows import (
    DAG,
    Artifact,
    Container,
    EmptyDirVolume,
    Env,
    GCSArtifact,
    NoneArchiveStrategy,
    Parameter,
    Resources,
    RetryStrategy,
    SecretEnv,
    WorkflowTemplate,
)
from hera.workflows import models as m

from workflows.images import step_image

PIPELINE_NAME = "trainyard-pipeline"
EXIT_HANDLER = "notify"
WORK_ROOT = "/work"
OUT = f"{WORK_ROOT}/outputs"
IN = f"{WORK_ROOT}/inputs"

# Workflow parameters users set with `argo submit -p name=value` (or `trainyard run --local -p`).
# Train mirrors its checkpoints here (per run) so a pod lost to preemption resumes on retry:
# Argo uploads output artifacts only when a pod ends, too late for a preempted one.
CHECKPOINT_ROOT = "gs://trainyard-artifacts/trainyard/checkpoints"
WORKFLOW_PARAMETERS = {
    "dataset-repo": ("", "git URL of the dataset repo (annotations + training datasets, DVC-tracked)"),
    "annotation-version": ("", "annotation tag to record, e.g. annotations/v3; empty: the newest"),
    "config": ("configs/cluster.yaml", "pipeline config file inside the step images"),
    "overrides": ("", "config overrides, space-separated KEY=VALUE, e.g. 'train.iterations=500'"),
    # Set by the Helm install (model registry, workflow.overrides) and applied before `overrides`, so
    # a run's own `-p overrides=...` adds to the install's settings instead of replacing them.
    "chart-overrides": ("", "config overrides of the install, applied before `overrides`"),
    "force-retrain": ("false", "true: train even when the dataset version is not new and a model was already "
                      "trained on it"),
    "webhook-url": ("", "URL the exit handler POSTs a run summary to; empty: the webhook Secret's, if any"),
    "checkpoint-root": (CHECKPOINT_ROOT, "durable checkpoints of train, ROOT/<workflow name>: a retried pod resumes "
                        "from them; empty: off"),
}
# Yes/no parameters: an enum, so the Argo UI offers only these, `trainyard run --local`, `trainyard
# lint` and Argo's validator on the template (workflow/validate/validate.go
# `validateArgumentsValues`) refuse anything else, e.g. `TRUE`, which the `when` would read as no.
# `argo submit --from workflowtemplate/...` does not check it (validate.go `Workflow` merges with
# util.go `MergeParameters`, where the submitted parameter, without the enum, wins), so record
# refuses such a value too, before any GPU work (`--force-retrain` in its arguments).
BOOLEAN = ["true", "false"]
ENUMS = {"force-retrain": BOOLEAN}
# Where GPU steps land (GKE labels its accelerator nodes with `cloud.google.com/gke-accelerator`).
GPU_NODE_SELECTOR = {"cloud.google.com/gke-accelerator": "nvidia-l4"}
# GPU steps tolerate GKE's GPU taint and the spot taint docs/cluster.md puts on a spot pool, so they
# schedule on an on-demand or a spot GPU pool alike (`steps.<step>.spot` then forces spot).
GPU_TOLERATIONS = [
    m.Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),
    m.Toleration(key="cloud.google.com/gke-spot", operator="Equal", value="true", effect="NoSchedule"),
]
GPU_STEPS = ("train", "evaluate", "select")
DATABASE_SECRET = ("trainyard-database", "url")
WEBHOOK_SECRET = ("trainyard-webhook", "url")  # optional: without it the summary is only stored
# Optional: git configuration for a private dataset repo, as git's GIT_CONFIG_COUNT/KEY_0/VALUE_0
# environment (e.g. an `http.extraHeader` with a token), so no credential lands in a parameter.
GIT_SECRET = "trainyard-git"
GIT_CONFIG_KEYS = ("GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0")
SERVICE_ACCOUNT = "trainyard"
ARTIFACT_REPOSITORY = ("trainyard-artifact-repositories", "gcs")  # ConfigMap, key
# What every pod of a run shares in the artifact repository: its keyFormat (the chart's
# artifacts.keyFormat, `trainyard/{{workflow.name}}/{{pod.name}}`) without the pod. Each evaluate
# pod writes its scores there as one object per group (a key-only output: Argo saves it at exactly
# that key, executor.go `saveArtifactFromFile`, so a retried pod overwrites its own), and select
# reads the whole prefix as one key-only input artifact, a folder (artifacts/gcs/gcs.go
# `downloadObjects`): nothing that grows with checkpoints, branches or classes is a parameter.
RUN_PREFIX = "trainyard/{{workflow.name}}"
SCORES_KEY = f"{RUN_PREFIX}/scores"
# PyTorch DataLoader workers pass batches through /dev/shm; a pod's default is only 64 MiB.
SHM_SIZE = "8Gi"
# Spot GPU nodes get preempted: Argo reruns the pod and train resumes from its checkpoints.
TRAIN_RETRIES = "3"
# Retry every way Argo reports a preempted or vanished pod, and nothing that would fail again
# (workflow/controller/operator.go: `inferFailedReason` maps a pod with a status message, such as
# kubelet's node-shutdown one, to Failed with that message; a deleted pod becomes Error "pod
# deleted"; `buildRetryStrategyLocalScope` gives exitCode "-1" when the main container never
# finished). 137 (SIGKILL) and 143 (our SIGTERM exit) are retried unless the kill was for memory or
# a deadline: an OOM kill, or kubelet evicting the pod (its status message, kubelet's
# pkg/kubelet/eviction/helpers.go: "The node was low on resource: memory. ...", "Usage of EmptyDir
# volume \"dshm\" exceeds the limit ...", "... local ephemeral storage limit ..."), which the next pod
# would hit again. A bad config exits 2 and a bug exits 1: not retried. See docs/cluster.md.
NOT_RETRIED_KILLS = ("OOMKilled|deadline|low on resource: memory|EmptyDir volume"
                     "|ephemeral local storage|local ephemeral storage")
PREEMPTION_RETRY_WHEN = (
    "lastRetry.status == 'Error'"
    " || lastRetry.message matches 'imminent node shutdown|node is shutting down'"
    f" || (asInt(lastRetry.exitCode) in [-1, 137, 143] && !(lastRetry.message matches '{NOT_RETRIED_KILLS}'))"
)
EVALUATE_RETRIES = "2"
# Kubernetes' default grace period; GKE gives spot pods at most ~15 s on node shutdown anyway, so
# the SIGTERM path only writes a local checkpoint and never starts an upload.
GRACE_SECONDS = 30
# Per-template limits (activeDeadlineSeconds) so no pod runs forever; the workflow's deadline also
# fails pods still Pending (operator.go, `failNodesWithoutCreatedPodsAfterDeadlineOrShutdown`).
DEADLINES = {"record": 3600, "train": 86400, "evaluate": 14400, "select": 14400, "test": 7200, "notify": 600}
WORKFLOW_DEADLINE = 172800
# Memory limits of the GPU steps. With a limit, running out of memory is an OOM kill of the
# container (`main: OOMKilled`), which the retry expression refuses; without one it may surface as
# a kubelet eviction. The memory-backed /dev/shm counts against it (tmpfs pages are charged to the
# container that writes them): 16Gi requested + the 8Gi shm. A g2-standard-8 node allots ~26 GiB.
MEMORY_LIMITS = {"train": "24Gi", "evaluate": "24Gi", "select": "24Gi"}
# Scratch space each step may write to its emptyDirs (evaluate downloads every checkpoint).
EPHEMERAL_STORAGE = {"record": "10Gi", "train": "20Gi", "evaluate": "20Gi", "select": "20Gi", "test": "10Gi",
                     "notify": "1Gi"}
# Fan-out evaluation: train lists its checkpoints in groups (evaluate.checkpoints_per_pod), one
# evaluate pod scores each group (`withParam`), at most this many at once (the DAG's
# `parallelism`, so at most this many GPU nodes for evaluation); select gathers the scores.
EVALUATE_PARALLELISM = 4
POD_GC_STRATEGY = "OnPodSuccess"  # failed pods stay for inspection until the workflow's TTL
TTL_AFTER_SUCCESS = 7 * 86400
TTL_AFTER_FAILURE = 14 * 86400
# Train gets the pod's GPU count here (the chart's steps.train.gpus): it trains on all of them.
POD_GPUS_ENV = "TRAINYARD_POD_GPUS"
RUN_AS = 10001  # the non-root UID and GID of every trainyard image (images/*/Dockerfile)
POD_SECURITY_CONTEXT = m.PodSecurityContext(
    run_as_non_root=True, run_as_user=RUN_AS, run_as_group=RUN_AS, fs_group=RUN_AS,
    seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
)
CONTAINER_SECURITY_CONTEXT = m.SecurityContext(
    allow_privilege_escalation=False, read_only_root_filesystem=True, capabilities=m.Capabilities(drop=["ALL"]),
)
IMAGE_PULL_POLICY = "IfNotPresent"


def _inputs(*names: str) -> list[Parameter]:
    return [Parameter(name=name) for name in names]


def _config_args(scope: str = "inputs") -> list[str]:
    # The install's overrides first, then the run's: later ones win, both survive a `-p overrides`.
    overrides = f"{{{{{scope}.parameters.chart-overrides}}}} {{{{{scope}.parameters.overrides}}}}"
    return ["--config", f"{{{{{scope}.parameters.config}}}}", "--set-list", overrides]


CONFIG_INPUTS = ("config", "chart-overrides", "overrides")


def _secret_env(variable: str, secret: tuple[str, str], optional: bool = False) -> SecretEnv:
    name, key = secret
    return SecretEnv(name=variable, secret_name=name, secret_key=key, optional=optional or None)


def _database_env() -> list[SecretEnv]:
    return [_secret_env("TRAINYARD_DATABASE_URL", DATABASE_SECRET)]


def _git_env() -> list[SecretEnv]:
    return [_secret_env(key, (GIT_SECRET, key), optional=True) for key in GIT_CONFIG_KEYS]


def _folder(name: str, path: str) -> Artifact:
    # Unarchived: the Argo UI can browse the folder and show its index.html / report.html.
    return Artifact(name=name, path=path, archive=NoneArchiveStrategy())


def _output_parameter(name: str, default: str | None = None) -> Parameter:
    return Parameter(name=name, value_from=m.ValueFrom(path=f"{OUT}/{name}", default=default))


def _scratch(*extra: EmptyDirVolume) -> list[EmptyDirVolume]:
    # The root filesystem is read-only: steps write only to /work (outputs) and /tmp (checkouts).
    return [EmptyDirVolume(name="work", mount_path=WORK_ROOT), EmptyDirVolume(name="tmp", mount_path="/tmp"), *extra]


def _resources(name: str, cpu: str, memory: str, gpus: int | None = None) -> Resources:
    return Resources(cpu_request=cpu, memory_request=memory, ephemeral_request=EPHEMERAL_STORAGE[name], gpus=gpus,
                     memory_limit=MEMORY_LIMITS.get(name))


def _step(name: str, args: list[str], volumes: list[EmptyDirVolume] | None = None, **kwargs) -> Container:
    """A container template running `python -m steps.<name>` in its image, hardened, with a deadline."""
    return Container(
        name=name,
        # IntOrString in Argo's types: its JSON schema (api/jsonschema) allows only the string form.
        active_deadline_seconds=str(DEADLINES[name]),
        pod_spec_patch=json.dumps({"terminationGracePeriodSeconds": GRACE_SECONDS}, separators=(",", ":")),
        image=step_image(name),
        image_pull_policy=IMAGE_PULL_POLICY,
        command=["python", "-m", f"steps.{name}"],
        args=args,
        security_context=CONTAINER_SECURITY_CONTEXT,
        volumes=volumes or _scratch(),
        **kwargs,
    )


def _gpu_step(name: str, args: list[str], **kwargs) -> Container:
    shm = EmptyDirVolume(name="dshm", mount_path="/dev/shm", medium="Memory", size_limit=SHM_SIZE)
    return _step(
        name, args, volumes=_scratch(shm),
        resources=_resources(name, "4", "16Gi", gpus=1),
        node_selector=GPU_NODE_SELECTOR,
        tolerations=GPU_TOLERATIONS,
        **kwargs,
    )


def record_template(memoize: m.Memoize | None = None, check_force_retrain: bool = True) -> Container:
    return _step(
        "record",
        [
            "--repo", "{{inputs.parameters.dataset-repo}}",
            "--annotation-version", "{{inputs.parameters.annotation-version}}",
            *_config_args(),
            "--output-version", f"{OUT}/dataset-version",
            "--output-needs-training", f"{OUT}/needs-training",
            *(["--force-retrain", "{{workflow.parameters.force-retrain}}"] if check_force_retrain else []),
        ],
        inputs=_inputs("dataset-repo", "annotation-version", *CONFIG_INPUTS),
        outputs=[_output_parameter("dataset-version"), _output_parameter("needs-training")],
        env=[*_database_env(), *_git_env()],
        resources=_resources("record", "1", "2Gi"),
        memoize=memoize,
    )


def _preemption_retry(limit: str) -> RetryStrategy:
    return RetryStrategy(limit=limit, retry_policy="Always", expression=PREEMPTION_RETRY_WHEN)


def train_template() -> Container:
    return _gpu_step(
        "train",
        [
            "--repo", "{{inputs.parameters.dataset-repo}}",
            "--dataset-version", "{{inputs.parameters.dataset-version}}",
            *_config_args(),
            "--output", f"{OUT}/train",
            "--checkpoint-root", "{{inputs.parameters.checkpoint-root}}",
            "--run-id", "{{workflow.name}}",
            "--output-checkpoint-groups", f"{OUT}/checkpoint-groups",
        ],
        inputs=_inputs("dataset-repo", "dataset-version", *CONFIG_INPUTS, "checkpoint-root"),
        # The default: a skipped train lists nothing, so the evaluate group is skipped too.
        outputs=[_folder("checkpoints", f"{OUT}/train"), _output_parameter("checkpoint-groups", default="[]")],
        # Empty with one GPU (and on a laptop): train.gpus decides; the chart sets it above one.
        env=[*_git_env(), Env(name=POD_GPUS_ENV, value="")],
        retry_strategy=_preemption_retry(TRAIN_RETRIES),
    )


def _evaluation_args() -> list[str]:
    return [
        "--repo", "{{inputs.parameters.dataset-repo}}",
        "--dataset-version", "{{inputs.parameters.dataset-version}}",
        *_config_args(),
        "--checkpoints", f"{IN}/train",
        "--run-id", "{{workflow.name}}",
    ]


def _evaluation_inputs(*names: str) -> list[Parameter | Artifact]:
    return [*_inputs("dataset-repo", "dataset-version", *CONFIG_INPUTS, *names), Artifact(name="checkpoints", path=f"{IN}/train")]


def group_scores(group: str) -> Artifact:
    """An evaluate pod's scores, one object under the run's scores prefix (see SCORES_KEY)."""
    return GCSArtifact(name="group-scores", path=f"{OUT}/group-scores", archive=NoneArchiveStrategy(),
                       key=f"{SCORES_KEY}/{group}")


def all_scores() -> Artifact:
    """select's input: every evaluate pod's object, the prefix read as one folder (key-only)."""
    return GCSArtifact(name="scores", path=f"{IN}/scores", archive=NoneArchiveStrategy(), key=SCORES_KEY)



def evaluate_template() -> Container:
    """One pod of the fan-out evaluation: scores one group of checkpoints (an item of train's list)."""
    return _gpu_step(
        "evaluate",
        [*_evaluation_args(), "--only", "{{inputs.parameters.checkpoint-group}}",
         "--output", f"{OUT}/scores", "--output-scores", f"{OUT}/group-scores/scores.json"],
        inputs=_evaluation_inputs("checkpoint-group", "group"),
        # The folder (with predictions) for people; the group's object for select.
        outputs=[_folder("scores", f"{OUT}/scores"), group_scores("{{inputs.parameters.group}}")],
        env=_git_env(),
        # Evaluate may land on spot GPUs too; it starts over cheaply, so the same rule applies.
        retry_strategy=_preemption_retry(EVALUATE_RETRIES),
    )


def select_template() -> Container:
    """The fan-in: picks the best checkpoint of all scores, registers it, promotes it at most once."""
    return _gpu_step(
        "select",
        [*_evaluation_args(), "--scores", f"{IN}/scores", "--upstream", "{{inputs.parameters.upstream}}",
         "--output", f"{OUT}/evaluation",
         "--output-promoted", f"{OUT}/promoted",
         "--output-model-uri", f"{OUT}/model-uri"],
        inputs=[*_evaluation_inputs("upstream"), all_scores()],
        outputs=[_folder("evaluation", f"{OUT}/evaluation"), _output_parameter("promoted"), _output_parameter("model-uri")],
        env=[*_database_env(), *_git_env()],
        retry_strategy=_preemption_retry(EVALUATE_RETRIES),
    )


def _page(name: str) -> Artifact:
    # One HTML file: the Argo UI shows an artifact inline only when its key ends in .html (a folder
    # cannot be browsed on GCS). It sits at <OUT>/<name>.html beside the output folders <OUT>/<name>
    # and the input folders <IN>/<name> (IN = OUT/../inputs), as Argo's artifact URLs do
    # (.../<nodeId>/outputs/<name>, .../<nodeId>/inputs/<name>), so that its relative file links to
    # their images are its URLs in the Argo UI; see steps/reports/argo_page.py.
    return Artifact(name=name, path=f"{OUT}/{name}.html", archive=NoneArchiveStrategy())


def test_template() -> Container:
    return _step(
        "test",
        [
            "--repo", "{{inputs.parameters.dataset-repo}}",
            "--dataset-version", "{{inputs.parameters.dataset-version}}",
            *_config_args(),
            # The model this run selected (evaluate's output), promoted or not; production beside it.
            "--model", "{{inputs.parameters.model-uri}}",
            "--compare", "production",
            "--output", f"{OUT}/report",
            "--test-page", _page("test-report").path,
            "--evaluation", f"{IN}/evaluation",
            "--evaluation-page", _page("evaluation-report").path,
        ],
        inputs=[*_inputs("dataset-repo", "dataset-version", *CONFIG_INPUTS, "model-uri"),
                Artifact(name="evaluation", path=f"{IN}/evaluation")],
        outputs=[_folder("report", f"{OUT}/report"), _page("test-report"), _page("evaluation-report")],
        env=_git_env(),
        resources=_resources("test", "2", "8Gi"),
    )


def notify_template() -> Container:
    """The exit handler: runs after the DAG whatever its outcome, records it and posts a summary.

    An exit handler gets no arguments, so it reads the workflow's own variables; what the steps
    produced (dataset version, model, promotion) it looks up in the database by run id.
    """
    return _step(
        EXIT_HANDLER,
        [
            "--run-id", "{{workflow.name}}",
            "--namespace", "{{workflow.namespace}}",
            "--status", "{{workflow.status}}",
            "--failures", "{{workflow.failures}}",
            "--started-at", "{{workflow.creationTimestamp}}",
            "--duration", "{{workflow.duration}}",
            "--webhook-url", "{{workflow.parameters.webhook-url}}",
            "--ui-base-url", "",
            *_config_args("workflow"),
        ],
        env=[*_database_env(), _secret_env("TRAINYARD_WEBHOOK_URL", WEBHOOK_SECRET, optional=True)],
        resources=_resources("notify", "100m", "256Mi"),
        retry_strategy=RetryStrategy(limit="2"),
    )


def _pass(*names: str) -> dict[str, str]:
    return {name: f"{{{{workflow.parameters.{name}}}}}" for name in names}


# Train, evaluate and test run only when record says the data is new or untrained (or a run forces
# it). Quoted: a hostile parameter value stays one string in Argo's govaluate `when`.
TRAIN_WHEN = ("'{{tasks.record.outputs.parameters.needs-training}}' == 'true'"
              " || '{{workflow.parameters.force-retrain}}' == 'true'")


def workflow_settings(component: str, description: str, parameters: dict[str, tuple[str, str]]) -> dict:
    """What every trainyard WorkflowTemplate sets: the exit handler, the service account, the
    artifact repository, pod security, deadlines, garbage collection, labels and its parameters."""
    name, key = ARTIFACT_REPOSITORY
    return dict(
        on_exit=EXIT_HANDLER,
        service_account_name=SERVICE_ACCOUNT,
        artifact_repository_ref=m.ArtifactRepositoryRef(config_map=name, key=key),
        security_context=POD_SECURITY_CONTEXT,
        active_deadline_seconds=WORKFLOW_DEADLINE,
        pod_gc=m.PodGC(strategy=POD_GC_STRATEGY),
        ttl_strategy=m.TTLStrategy(seconds_after_success=TTL_AFTER_SUCCESS, seconds_after_failure=TTL_AFTER_FAILURE),
        labels={"app.kubernetes.io/name": "trainyard", "app.kubernetes.io/component": component},
        annotations={"workflows.argoproj.io/description": description},
        arguments=[Parameter(name=n, value=v, description=t, enum=ENUMS.get(n)) for n, (v, t) in parameters.items()],
    )


def build_pipeline() -> WorkflowTemplate:
    dataset_version = {"dataset-version": "{{tasks.record.outputs.parameters.dataset-version}}"}
    common = _pass("dataset-repo", *CONFIG_INPUTS)
    with WorkflowTemplate(
        name=PIPELINE_NAME,
        entrypoint="pipeline",
        **workflow_settings("pipeline", "Record, train, evaluate and test a Mask R-CNN model.", WORKFLOW_PARAMETERS),
    ) as template:
        record, train, test = record_template(), train_template(), test_template()
        evaluate, select = evaluate_template(), select_template()
        notify_template()
        # parallelism bounds the DAG's running pods: only the evaluate group ever runs side by side.
        with DAG(name="pipeline", parallelism=EVALUATE_PARALLELISM):
            record_task = record(name="record", arguments={**common, **_pass("annotation-version")})
            train_task = train(name="train", when=TRAIN_WHEN,
                               arguments={**common, **dataset_version, **_pass("checkpoint-root")})
            checkpoints = m.Artifact(name="checkpoints", from_="{{tasks.train.outputs.artifacts.checkpoints}}")
            evaluate_task = evaluate(
                name="evaluate",
                when=TRAIN_WHEN,
                with_param="{{tasks.train.outputs.parameters.checkpoint-groups}}",
                arguments=[
                    *[Parameter(name=k, value=v) for k, v in {
                        **common, **dataset_version, "checkpoint-group": "{{item.checkpoints}}", "group": "{{item.group}}"
                    }.items()],
                    checkpoints,
                ],
            )
            # Partial results: select runs when at least one evaluate pod succeeded (dag.go
            # evaluateDependsLogic: AnySucceeded over the group's children; plain `evaluate` would
            # need all of them), or evaluate was skipped (then select's own `when` skips it too).
            select_task = select(
                name="select",
                when=TRAIN_WHEN,
                depends="evaluate.AnySucceeded || evaluate.Skipped",
                arguments=[
                    *[Parameter(name=k, value=v) for k, v in {
                        **common, **dataset_version, "upstream": "evaluate={{tasks.evaluate.status}}"}.items()],
                    checkpoints,
                ],
            )
            test_task = test(
                name="test",
                when=TRAIN_WHEN,
                arguments=[
                    *[Parameter(name=k, value=v) for k, v in {
                        **common, **dataset_version, "model-uri": "{{tasks.select.outputs.parameters.model-uri}}"}.items()],
                    m.Artifact(name="evaluation", from_="{{tasks.select.outputs.artifacts.evaluation}}"),
                ],
            )
            record_task >> train_task >> evaluate_task
            select_task >> test_task
    return template
