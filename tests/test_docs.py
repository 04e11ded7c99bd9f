"""Every command README.md shows, run as written (with tiny settings appended), so the README cannot drift.

The commands are read from the README's ```bash blocks. Each one must match a runner below: a
new command without one fails `test_every_readme_command_is_checked`, and each local command
really runs, in a temporary folder that stands for the checkout (its `runs/`). Settings that only
make it cheap come after the README's own (`--set` later wins): 2 iterations at 96-128 px. The
cluster commands run against stand-in Argo servers shaped like Argo's API (tests/test_submit.py,
tests/test_run_commands.py); those that need a cluster or Docker (kubectl, helm install, argo,
the image build) are checked for what this repo decides: the names and values they use.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_run_commands import RUN as CLUSTER_RUN
from tests.test_run_commands import argo_api  # noqa: F401  (fixture)
from tests.test_submit import RUN as SUBMITTED, FakeArgo, _workflow
from tests.test_submit import argo  # noqa: F401  (fixture)
from workflows.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Appended to every local `trainyard run`: what makes it cheap, nothing it is about.
TINY = ["--set", "train.iterations=2", "--set", "train.checkpoint_period=2", "--set", "train.warmup_iters=1",
        "--set", "model.min_size=96", "--set", "model.max_size=128", "--set", "model.roi_batch_size_per_image=32",
        "--set", "test.max_images=2", "--set", "promotion.min_first_score=null", "--set", "promotion.bootstrap_samples=20"]
pytestmark = pytest.mark.filterwarnings("ignore:The `json` method is deprecated:DeprecationWarning")


def readme_commands() -> list[str]:
    """Each command of the README's bash blocks (`a; b` is two), without its trailing comment."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            commands += [part.strip() for part in line.split(";") if part.strip()]
    return commands


LOCAL = re.compile(r"^(\.venv/bin/trainyard|\.venv/bin/tensorboard|make) ")
CLUSTER = re.compile(r"^(trainyard|argo|kubectl|helm|scripts/build-images\.sh) ")


def test_every_readme_command_is_checked() -> None:
    commands = readme_commands()
    assert len(commands) > 10
    unknown = [c for c in commands if not LOCAL.match(c) and not CLUSTER.match(c)]
    assert not unknown, f"README commands this test does not run: {unknown}; add a runner to tests/test_docs.py"
    local = [c for c in commands if LOCAL.match(c)]
    assert set(local) == set(LOCAL_COMMANDS), "the README's local commands changed: update LOCAL_COMMANDS to run them"
    cluster = [c for c in commands if CLUSTER.match(c)]
    assert set(cluster) == set(CLUSTER_COMMANDS), "the README's cluster commands changed: update CLUSTER_COMMANDS"


# The README's local commands, in the order they run here (later ones use what earlier ones made).
LOCAL_COMMANDS = [
    "make demo",
    ".venv/bin/trainyard run --local --set train.iterations=400 --set model.backbone=resnet34",
    ".venv/bin/trainyard run --local --dataset-repo ~/data/plates -p annotation-version=annotations/v3",
    ".venv/bin/trainyard run --local --parallel 2 --sweep 'train.lr=[0.01,0.02] model.backbone=[resnet18,resnet34]'",
    ".venv/bin/trainyard run --local --sweep sweep.yaml",
    ".venv/bin/tensorboard --logdir runs/",
    ".venv/bin/trainyard models list --registry runs/registry",
    ".venv/bin/trainyard runs",
    ".venv/bin/trainyard logs @latest train -f",
    ".venv/bin/trainyard predict photos/",
    ".venv/bin/trainyard models export production --format onnx",
    "make test",
]


def _trainyard(command: str, capsys: pytest.CaptureFixture[str], extra: list[str] | None = None) -> str:
    args = [os.path.expanduser(arg) for arg in shlex.split(command)[1:]]  # as the shell expands ~
    code = main([*args, *(extra or [])])
    out, err = capsys.readouterr()
    assert code == 0, f"{command}: exit {code}\n{out[-3000:]}\n{err[-2000:]}"
    return out


@pytest.mark.e2e
@pytest.mark.integration
def test_the_readmes_local_commands_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from steps.datasets.sample_shapes import generate_shapes
    from workflows.local.sample_repo import create_sample_repo

    monkeypatch.chdir(tmp_path)  # the checkout: `runs/` is here
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/data/plates
    commands = dict.fromkeys(LOCAL_COMMANDS)

    # make demo: its recipe, as the Makefile has it
    recipe = re.search(r"^demo:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M).group(1)  # type: ignore[union-attr]
    assert recipe == "OMP_WAIT_POLICY=PASSIVE $(BIN)/trainyard run --local --parallel 2"
    # A 24-image sample where the demo makes 300 (each command below scores its validation and
    # test splits; the 300 are made in tests/test_overlapping_runs.py): kept, with a note.
    create_sample_repo(tmp_path / "runs" / "sample-dataset", images=24)
    out = _trainyard("trainyard run --local --parallel 2", capsys, TINY)
    assert "Run local-" in out and "succeeded" in out and "Evaluation report: file://" in out
    assert "holds 24 sample images, made by an earlier trainyard; the demo now makes 300" in out
    commands["make demo"] = "ran"

    out = _trainyard(LOCAL_COMMANDS[1], capsys, TINY)  # the same data: nothing new to train on
    assert "succeeded" in out and re.search(r"^  train +Skipped", out, re.M)
    commands[LOCAL_COMMANDS[1]] = "ran"

    create_sample_repo(tmp_path / "data" / "plates", images=20, seed=4, version="annotations/v3")
    out = _trainyard(LOCAL_COMMANDS[2], capsys, TINY)
    assert "succeeded" in out and "Dataset version: datasets/v3" in out
    commands[LOCAL_COMMANDS[2]] = "ran"

    # The sweeps record the sample data again (a no-op) and train their branches.
    out = _trainyard(LOCAL_COMMANDS[3], capsys, TINY)
    assert "Sweep of 4 branches" in out and "succeeded" in out
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump([{"train.lr": 0.01}]))
    out = _trainyard(LOCAL_COMMANDS[4], capsys, TINY)
    assert "Sweep of 1 branches" in out and "succeeded" in out
    commands[LOCAL_COMMANDS[3]] = commands[LOCAL_COMMANDS[4]] = "ran"

    # tensorboard: --inspect reads the same logdir and exits; the validation AP is among the tags
    # (its console script, or the same entry point where the script is not installed beside this Python)
    binary = shutil.which("tensorboard", path=str(Path(sys.executable).parent))
    command = [binary] if binary else [sys.executable, "-c", "from tensorboard.main import run_main; run_main()"]
    inspected = subprocess.run([*command, "--inspect", *shlex.split(LOCAL_COMMANDS[5])[1:]], capture_output=True,
                               text=True, timeout=300, cwd=tmp_path)
    assert inspected.returncode == 0 and "validation/segm/AP" in inspected.stdout + inspected.stderr
    commands[LOCAL_COMMANDS[5]] = "ran"

    out = _trainyard(LOCAL_COMMANDS[6], capsys)
    assert out.count("datasets/v1") >= 2 and "*" in out
    out = _trainyard(LOCAL_COMMANDS[7], capsys)
    assert "Skipped" in out and out.count("Succeeded") >= 3
    out = _trainyard(LOCAL_COMMANDS[8], capsys)
    assert out.startswith("train") and "train(0): " in out  # the newest run is the sweep: its train pods
    commands[LOCAL_COMMANDS[6]] = commands[LOCAL_COMMANDS[7]] = commands[LOCAL_COMMANDS[8]] = "ran"

    generate_shapes(tmp_path / "photos", num_images=2)
    out = _trainyard(LOCAL_COMMANDS[9], capsys)
    assert (tmp_path / "predictions" / "predictions.json").is_file() and "predicted 2 image(s)" in out
    out = _trainyard(LOCAL_COMMANDS[10], capsys)
    production = json.loads((tmp_path / "runs" / "registry" / "production.json").read_text())["model_id"]
    assert (tmp_path / f"{production}.onnx").is_file() and "wrote" in out
    commands[LOCAL_COMMANDS[9]] = commands[LOCAL_COMMANDS[10]] = "ran"

    # make test: this suite; its recipe installs, starts the services and runs pytest
    assert re.search(r"^test: install services", (ROOT / "Makefile").read_text(), re.M)
    commands["make test"] = "ran"
    assert all(commands.values()), [c for c, ran in commands.items() if not ran]


CLUSTER_COMMANDS = [
    "scripts/build-images.sh --push europe-docker.pkg.dev/PROJECT/trainyard 0.1.0",
    "kubectl -n ml create secret generic trainyard-database --from-literal=url='postgresql://USER:PASSWORD@HOST:5432/trainyard'",
    "helm install trainyard charts/trainyard -n ml -f my-values.yaml",
    "argo submit -n ml --from workflowtemplate/trainyard-pipeline -p annotation-version=annotations/v3 --watch",
    "trainyard submit -n ml -p annotation-version=annotations/v3 --watch",
    "trainyard runs", "trainyard get NAME", "trainyard logs NAME train -f", "trainyard stop NAME", "trainyard retry NAME",
]


def test_the_readmes_cluster_commands_use_what_the_repo_installs() -> None:
    from workflows.pipeline import PIPELINE_NAME, WORKFLOW_PARAMETERS

    # the image build script takes --push REGISTRY VERSION
    script = (ROOT / "scripts" / "build-images.sh").read_text()
    assert "--push" in script and subprocess.run(["bash", "-n", str(ROOT / "scripts" / "build-images.sh")]).returncode == 0
    # the Secret and key the chart's pods read the database URL from
    rendered = (ROOT / "workflows" / "rendered" / "trainyard-pipeline.yaml").read_text()
    assert "name: trainyard-database" in rendered and "key: url" in rendered
    # the chart the README installs, and the template and parameter `argo submit` names
    assert (ROOT / "charts" / "trainyard" / "Chart.yaml").is_file()
    assert PIPELINE_NAME == "trainyard-pipeline" and "annotation-version" in WORKFLOW_PARAMETERS


def test_the_readmes_submit_runs_against_an_argo_server(argo: FakeArgo, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_submit import NAMESPACE, TOKEN, _node

    argo.watch_answers = [_workflow("Succeeded", [_node("record", "Succeeded", "2026-01-01T10:00:00Z")])]
    monkeypatch.setenv("ARGO_SERVER", argo.url)
    monkeypatch.setenv("ARGO_TOKEN", TOKEN)
    assert NAMESPACE == "ml"
    out = _trainyard(CLUSTER_COMMANDS[4], capsys, ["--poll", "0.01"])
    assert f"submitted {SUBMITTED} in namespace ml" in out and f"{SUBMITTED} Succeeded" in out
    assert argo.problems == []


def test_the_readmes_run_commands_run_against_an_argo_server(argo_api: dict[str, Any], tmp_path: Path,  # noqa: F811
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_run_commands import _listed

    monkeypatch.delenv("TRAINYARD_DATABASE_URL", raising=False)
    argo_api["pages"] = {"": {"metadata": {}, "items": [_listed(CLUSTER_RUN, "Failed", "2026-01-01T02:00:00Z",
                                                                "2026-01-01T02:10:00Z")]}}
    listed = _trainyard(CLUSTER_COMMANDS[5], capsys, ["--runs-dir", str(tmp_path)])
    assert any(line.split()[:2] == [CLUSTER_RUN, "Failed"] for line in listed.splitlines()), listed
    for command in CLUSTER_COMMANDS[6:]:
        _trainyard(command.replace("NAME", CLUSTER_RUN), capsys, ["--runs-dir", str(tmp_path)])
    assert argo_api["problems"] == []
