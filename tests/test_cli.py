"""The command lines users type: help everywhere, one-line errors, never a traceback for a mistake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workflows.cli import build_parser

STEPS = ["record", "train", "evaluate", "test"]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def _trainyard(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return _run("-m", "workflows.cli", *args, cwd=cwd)


def _commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("command", _commands())
def test_every_trainyard_command_has_help(command: str) -> None:
    done = _trainyard(command, "--help")
    assert done.returncode == 0 and "usage: trainyard " + command in done.stdout
    assert len(done.stdout.splitlines()) > 3


@pytest.mark.parametrize("step", STEPS)
def test_every_step_has_help(step: str) -> None:
    done = _run("-m", f"steps.{step}", "--help")
    assert done.returncode == 0 and f"python -m steps.{step}" in done.stdout and "--config" in done.stdout


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_unknown_set_key_is_one_line_naming_the_key_and_the_fix(tmp_path: Path) -> None:
    line = _one_line_error(_trainyard("run", "--local", "--set", "train.iterashuns=5", "--output", str(tmp_path)))
    assert "train.iterashuns" in line and "did you mean 'iterations'" in line
    assert not any(tmp_path.iterdir()), "a bad config must fail before any work starts"


def test_wrong_config_type_names_the_field(tmp_path: Path) -> None:
    line = _one_line_error(_trainyard("run", "--local", "--set", "train.batch_size=many", "--output", str(tmp_path)))
    assert "train.batch_size" in line


def test_missing_dataset_dir_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dataset"
    line = _one_line_error(_trainyard("run", "--local", "--dataset-repo", str(missing), "--output", str(tmp_path / "runs")))
    assert str(missing) in line and "no such folder" in line


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    line = _one_line_error(_trainyard("run", "--local", "--config", str(tmp_path / "nope.yaml")))
    assert "nope.yaml" in line and "not found" in line


def test_run_without_local_says_how(tmp_path: Path) -> None:
    error = _one_line_error(_trainyard("run"))
    assert "--local" in error and "trainyard submit" in error


def test_submit_checks_set_and_sweep_before_asking_any_server(tmp_path: Path) -> None:
    from workflows.commands.submit import with_settings

    # --set joins -p overrides=... (after it); --sweep becomes the sweep template's parameter
    assert with_settings(["overrides=train.lr=0.1", "annotation-version=annotations/v3"], ["train.iterations=9"], None) == [
        "annotation-version=annotations/v3", "overrides=train.lr=0.1 train.iterations=9"]
    items = with_settings([], [], "train.lr=[0.01,0.02]")
    assert items[-1].startswith("sweep=") and '"overrides":"train.lr=0.02"' in items[-1]
    # a misspelt key fails here, with no server given
    error = _one_line_error(_trainyard("submit", "--set", "train.iterashuns=9"))
    assert "iterashuns" in error and "iterations" in error


def test_a_bad_sweep_or_parallel_is_one_line_before_anything_runs(tmp_path: Path) -> None:
    out = str(tmp_path / "runs")
    assert "KEY=[V1,V2,...]" in _one_line_error(_trainyard("run", "--local", "--output", out, "--sweep", "train.lr=0.01"))
    assert "not a config key" in _one_line_error(_trainyard("run", "--local", "--output", out, "--sweep", "x=[1,2]"))
    # A valid key with a value the config refuses fails before the sample dataset is generated.
    error = _one_line_error(_trainyard("run", "--local", "--output", out, "--sweep", "train.lr=[0.01,-1]"))
    assert "train.lr" in error
    assert "at least 1" in _one_line_error(_trainyard("run", "--local", "--output", out, "--parallel", "0"))
    assert not (tmp_path / "runs").exists()


def test_lint_with_no_files_checks_our_templates_and_passes() -> None:
    done = _trainyard("lint")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 file(s) checked, 0 problem(s)" in done.stderr  # pipeline, nightly, sweep


def test_render_check_passes_on_the_committed_files() -> None:
    done = _trainyard("render", "--check")
    assert done.returncode == 0, done.stderr


@pytest.mark.integration
def test_labelme_file_that_is_not_json_fails_the_run_with_one_line(sample_repo: Path, tmp_path: Path) -> None:
    from steps.datasets.repo import commit_annotations

    (sample_repo / "annotations" / "broken.json").write_text("{ not json")
    commit_annotations(sample_repo, "annotations", "annotations/v2")
    done = _trainyard("run", "--local", "--dataset-repo", str(sample_repo), "-p", "annotation-version=annotations/v2",
                      "--output", str(tmp_path / "runs"))
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if "| error:" in line]
    assert len(errors) == 1 and "broken.json" in errors[0] and "JSON" in errors[0]
    assert "Step record failed" in done.stdout


def test_version_and_fast_help_without_heavy_imports() -> None:
    done = _trainyard("--version")
    assert done.returncode == 0 and done.stdout.startswith("trainyard ")
    # --help must not import the Hera definitions, torch or the metrics (a second or more each)
    probe = ("import sys; from workflows.cli import build_parser; build_parser(); "
             "print(sorted(m for m in ('hera', 'torch', 'faster_coco_eval', 'matplotlib') if m in sys.modules))")
    assert _run("-c", probe).stdout.strip() == "[]"


def test_coco_eval_bbox_imports_only_what_scores(tmp_path: Path) -> None:
    # A user waits for the whole process: the local runner, PIL, multiprocessing, the mask API
    # (bbox never decodes a mask), the configuration's pydantic models and YAML are not needed.
    gt = {"images": [{"id": 1, "height": 8, "width": 8}], "categories": [{"id": 1, "name": "plate"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0,
                           "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps([{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [1, 1, 4, 4]}]))
    heavy = ("workflows.local", "PIL", "multiprocessing", "faster_coco_eval", "pydantic", "yaml", "torch", "hera")
    probe = (f"import sys; from workflows.cli import main; main(['coco-eval', {str(tmp_path / 'gt.json')!r}, "
             f"{str(tmp_path / 'res.json')!r}]); print(sorted(m for m in {heavy!r} if m in sys.modules))")
    done = _run("-c", probe)
    assert done.returncode == 0 and "AP50   1.0000" in done.stdout, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_steps_without_config_say_which_defaults_apply(tmp_path: Path) -> None:
    done = _run("-m", "steps.test", "--output", str(tmp_path / "out"), "--dataset-dir", str(tmp_path / "missing"))
    assert done.returncode == 2 and "no --config" in done.stderr and "not a COCO dataset folder" in done.stderr


def test_a_misspelt_run_parameter_gets_a_hint_before_anything_is_made(tmp_path: Path) -> None:
    done = _trainyard("run", "--local", "-p", "annotation-versoin=annotations/v1", "--output", str(tmp_path / "runs"),
                      cwd=tmp_path)
    assert "did you mean 'annotation-version'?" in _one_line_error(done)
    assert not (tmp_path / "runs").exists()  # no sample dataset, no run folder
