"""The `trainyard-sweep` WorkflowTemplate: record once, one train + evaluate branch per override
set, in parallel, then one selection across every branch and at most one promotion.

Built from the same step templates as the pipeline (workflows/pipeline.py); Argo-native fan-out
without nested DAGs:

    record -> train (withParam: the `sweep` parameter, one pod per branch)
           -> evaluate (withParam: train's aggregated `branch` outputs, one pod per branch)
           -> select (all branches' scores, one object each) ; notify on exit

A branch that fails does not throw the others away: evaluate runs for the branches that trained and
select for those evaluated (`AnySucceeded`), and a partial sweep is never promoted automatically.

A branch's evaluate pod cannot take that branch's output artifact (Argo does not fan artifacts of a
task group in), so each branch trains with its own durable checkpoint folder,
`checkpoint-root/<workflow>-<branch>`, and evaluate and select read the checkpoints from there.
"""

from __future__ import annotations

from hera.workflows import DAG, Container, Env, Parameter, WorkflowTemplate
from hera.workflows import models as m

from workflows.pipeline import (
    CONFIG_INPUTS, EVALUATE_RETRIES, IN, OUT, POD_GPUS_ENV, TRAIN_RETRIES, WORKFLOW_PARAMETERS, _config_args,
    _database_env, _folder, _git_env, _gpu_step, _inputs, _output_parameter, _pass, _preemption_retry, all_scores,
    group_scores, notify_template, record_template, workflow_settings,
)

SWEEP_NAME = "trainyard-sweep"
# Branches (train pods, then evaluate pods) at once: each needs a GPU node.
SWEEP_PARALLELISM = 4
EXAMPLE = '[{"branch":"b0","overrides":"train.lr=0.01"},{"branch":"b1","overrides":"train.lr=0.02"}]'
SWEEP_PARAMETERS = {
    **{name: WORKFLOW_PARAMETERS[name] for name in ("dataset-repo", "annotation-version", "config", "overrides",
                                                    "chart-overrides", "webhook-url")},
    "checkpoint-root": (WORKFLOW_PARAMETERS["checkpoint-root"][0],
                        "durable checkpoints, ROOT/<workflow name>-<branch>: evaluate and select read a branch's "
                        "checkpoints from there (required)"),
    "sweep": (EXAMPLE, "the branches: a JSON list of {branch: bN, overrides: 'K=V K=V'}; `trainyard run --local "
              "--sweep FILE` writes it from a YAML list of override sets or a grid"),
}
BRANCH_RUN = "{{workflow.name}}-{{inputs.parameters.branch}}"
# record is memoized by dataset repo + annotation version, so a rerun of a sweep does not record
# again. Argo keys must match ^[a-zA-Z0-9][-a-zA-Z0-9]*$ (controller/cache/cache.go): a sha256
# of both. An empty annotation version means "the newest", which changes: such a run keys on its
# own name, a miss. (The pipeline's record is not memoized: it also decides needs-training, which
# must be fresh on every run.) The chart creates the ConfigMap and lets Argo's controller
# read and update it (templates/memoize.yaml); without it (memoize.enabled: false) the chart
# leaves `memoize` out, since the controller may not create the ConfigMap (workflows/chart.py).
RECORD_CACHE = "trainyard-record-cache"
RECORD_CACHE_MAX_AGE = "720h"  # a recorded version is immutable; this bounds a cache outliving its database
RECORD_KEY = ("record-{{=sprig.sha256sum(inputs.parameters['dataset-repo'] + ' ' + "
              "(inputs.parameters['annotation-version'] == '' ? workflow.name : inputs.parameters['annotation-version']))}}")


def _branch_args() -> list[str]:
    return ["--repo", "{{inputs.parameters.dataset-repo}}",
            "--dataset-version", "{{inputs.parameters.dataset-version}}", *_config_args()]


def branch_train_template() -> Container:
    return _gpu_step(
        "train",
        [*_branch_args(), "--output", f"{OUT}/train",
         "--checkpoint-root", "{{inputs.parameters.checkpoint-root}}", "--run-id", BRANCH_RUN,
         "--branch", "{{inputs.parameters.branch}}", "--branch-overrides", "{{inputs.parameters.branch-overrides}}",
         "--output-branch", f"{OUT}/branch"],
        inputs=_inputs("dataset-repo", "dataset-version", *CONFIG_INPUTS, "checkpoint-root", "branch", "branch-overrides"),
        outputs=[_folder("checkpoints", f"{OUT}/train"), _output_parameter("branch")],
        env=[*_git_env(), Env(name=POD_GPUS_ENV, value="")],
        retry_strategy=_preemption_retry(TRAIN_RETRIES),
    )


def branch_evaluate_template() -> Container:
    return _gpu_step(
        "evaluate",
        [*_branch_args(), "--checkpoint-uri", "{{inputs.parameters.source}}", "--run-id", "{{workflow.name}}",
         "--only", "all",  # one pod per branch scores all of it: no list of checkpoints in its arguments
         "--branch", "{{inputs.parameters.branch}}", "--branch-overrides", "{{inputs.parameters.branch-overrides}}",
         "--output", f"{OUT}/scores", "--output-scores", f"{OUT}/group-scores/scores.json"],
        inputs=_inputs("dataset-repo", "dataset-version", *CONFIG_INPUTS, "source", "branch",
                       "branch-overrides"),
        outputs=[_folder("scores", f"{OUT}/scores"), group_scores("{{inputs.parameters.branch}}")],
        env=_git_env(),
        retry_strategy=_preemption_retry(EVALUATE_RETRIES),
    )


def branch_select_template() -> Container:
    return _gpu_step(
        "select",
        [*_branch_args(), "--scores", f"{IN}/scores", "--upstream", "{{inputs.parameters.upstream}}",
         "--run-id", "{{workflow.name}}",
         "--output", f"{OUT}/evaluation", "--output-promoted", f"{OUT}/promoted", "--output-model-uri", f"{OUT}/model-uri"],
        inputs=[*_inputs("dataset-repo", "dataset-version", *CONFIG_INPUTS, "upstream"), all_scores()],
        outputs=[_folder("evaluation", f"{OUT}/evaluation"), _output_parameter("promoted"), _output_parameter("model-uri")],
        env=[*_database_env(), *_git_env()],
        retry_strategy=_preemption_retry(EVALUATE_RETRIES),
    )


def _arguments(values: dict[str, str]) -> list[Parameter]:
    return [Parameter(name=k, value=v) for k, v in values.items()]


def build_sweep() -> WorkflowTemplate:
    common = _pass("dataset-repo", *CONFIG_INPUTS)
    dataset_version = {"dataset-version": "{{tasks.record.outputs.parameters.dataset-version}}"}
    with WorkflowTemplate(
        name=SWEEP_NAME,
        entrypoint="sweep",
        **workflow_settings(
            "sweep", "Record once, train and evaluate one branch per override set, promote the best branch's model.",
            SWEEP_PARAMETERS),
    ) as template:
        cache = m.Cache(config_map=m.LocalObjectReference(name=RECORD_CACHE))
        record = record_template(m.Memoize(key=RECORD_KEY, cache=cache, max_age=RECORD_CACHE_MAX_AGE),
                                 check_force_retrain=False)  # a sweep always trains
        train = branch_train_template()
        evaluate, select = branch_evaluate_template(), branch_select_template()
        notify_template()
        with DAG(name="sweep", parallelism=SWEEP_PARALLELISM):
            record_task = record(name="record", arguments={**common, **_pass("annotation-version")})
            train_task = train(name="train", with_param="{{workflow.parameters.sweep}}", arguments=_arguments({
                **common, **dataset_version, **_pass("checkpoint-root"),
                "branch": "{{item.branch}}", "branch-overrides": "{{item.overrides}}"}))
            # Partial results (dag.go evaluateDependsLogic, AnySucceeded over a group's children):
            # evaluate the branches that trained (Argo aggregates succeeded children's outputs
            # only, operator.go processAggregateNodeOutputs), select among those evaluated.
            evaluate_task = evaluate(name="evaluate", with_param="{{tasks.train.outputs.parameters.branch}}",
                                     depends="train.AnySucceeded", arguments=_arguments({
                                         **common, **dataset_version, "source": "{{item.source}}",
                                         "branch": "{{item.branch}}",
                                         "branch-overrides": "{{item.overrides}}"}))
            select(name="select", depends="evaluate.AnySucceeded", arguments=_arguments({
                **common, **dataset_version, "upstream": "train={{tasks.train.status}} evaluate={{tasks.evaluate.status}}"}))
            record_task >> train_task
    return template
