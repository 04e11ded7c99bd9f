"""Yes/no workflow parameters take `true` or `false` and nothing else.

`force-retrain` reaches the `when` of train, evaluate, select and test as text: `TRUE` would read
as no, skip them all and end the run Succeeded. Argo v4.1.2 refuses a value outside a parameter's
`enum` where the enum sits on the parameter validated (workflow/validate/validate.go
`validateArgumentsValues`: `slices.Contains`, exact), so the template's own default is checked and
the Argo UI offers only the enum (ui/src/workflows/components/submit-workflow-panel.tsx); but
`argo submit --from workflowtemplate/...` builds a Workflow whose parameter has no enum
(workflow/util/util.go `overrideParameters`), and `validate.Workflow` merges it over the
template's with `MergeParameters` (util/util.go: the first list's item wins whole), so the enum is
not enforced there. Hence record, the first step, refuses such a value too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workflows.lint import lint_text
from workflows.pipeline import BOOLEAN, ENUMS, WORKFLOW_PARAMETERS, build_pipeline
from workflows.sweep import build_sweep

REPO = Path(__file__).resolve().parents[1]


def _parameters(manifest: dict) -> dict[str, dict]:
    return {p["name"]: p for p in manifest["spec"]["arguments"]["parameters"]}


def test_every_yes_no_parameter_has_the_enum() -> None:
    yes_no = {name for name, (default, _) in WORKFLOW_PARAMETERS.items() if default in BOOLEAN}
    assert yes_no == {"force-retrain"} == set(ENUMS)
    for manifest in (build_pipeline().to_dict(), build_sweep().to_dict()):
        for name, param in _parameters(manifest).items():
            assert param.get("enum") == (BOOLEAN if name in yes_no else None), name


def test_lint_refuses_a_default_outside_the_enum() -> None:
    # validate.go validateArgumentsValues on the template itself (what `argo template create` runs).
    manifest = build_pipeline().to_dict()
    _parameters(manifest)["force-retrain"]["value"] = "TRUE"
    problems = [str(p) for p in lint_text(yaml.safe_dump(manifest), "pipeline.yaml")]
    assert any("force-retrain" in p and "enum" in p for p in problems), problems


def test_the_local_runner_refuses_true_in_capitals_before_anything_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "workflows.cli", "run", "--local", "-p", "force-retrain=TRUE",
                           "--output", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: spec.arguments.parameters.force-retrain.value should be present in "
        "spec.arguments.parameters.force-retrain.enum list (true, false)")
    assert not out.exists()  # no sample dataset, no run folder: nothing ran


def test_record_refuses_what_argo_submit_lets_through() -> None:
    record = next(t for t in build_pipeline().to_dict()["spec"]["templates"] if t["name"] == "record")
    args = record["container"]["args"]
    assert args[args.index("--force-retrain") + 1] == "{{workflow.parameters.force-retrain}}"
    done = subprocess.run([sys.executable, "-m", "steps.record", "--force-retrain", "TRUE"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --force-retrain: invalid choice: 'TRUE' (choose from 'true', 'false')" in done.stderr


@pytest.mark.parametrize("value", ["TRUE", "yes", "1"])
def test_the_chart_refuses_a_nightly_force_retrain_that_is_not_true_or_false(value: str) -> None:
    from tests.test_chart import REPO as DATASET, HelmError, _render

    with pytest.raises(HelmError, match="force-retrain"):
        _render(DATASET + f"nightly: {{parameters: {{force-retrain: '{value}'}}}}\n")
    _render(DATASET + "nightly: {parameters: {force-retrain: true}}\n")  # YAML's true is fine
