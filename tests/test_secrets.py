"""A secret, however a user gives it, reaches no output: real local runs, with every file they
write and everything they print searched for it.

The database URL is taken only from the environment (or the Secret on a cluster): given any other
way it is refused before anything runs, so most cases cost nothing. Where a run must go through
(the URL from the environment, a dataset repo, webhook or weights URL carrying a token), it runs
for real on the smallest settings.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from steps.cli import run_cli
from workflows.cli import main as trainyard

PASSWORD = "Zq7xW9pL s3cr3t-PW"  # a space, as libpq allows in a URL's password
# No fragment of it may show (long enough not to occur by chance in a checkpoint's bytes).
PIECES = ("Zq7xW9pL", "s3cr3t-PW", "Zq7xW9pL%20s3cr3t-PW")
TOKEN = "Tk9s3cr3tT0ken0123456789AbCd"  # shaped like a webhook's path token
DB_URL = f"postgresql://trainer:{PASSWORD}@db.example.com:5432/trainyard"
TINY = {
    "dataset": {"val_fraction": 0.25, "test_fraction": 0.25},
    "model": {"backbone": "resnet18", "min_size": 64, "max_size": 96, "roi_batch_size_per_image": 16,
              "rpn_proposals_test": 50},
    "train": {"iterations": 1, "batch_size": 1, "warmup_iters": 0, "checkpoint_period": 1, "log_period": 1,
              "num_workers": 0},
    "evaluate": {"batch_size": 1, "select_key": "segm/AP50"},
    "promotion": {"min_first_score": None, "bootstrap_samples": 2},
    "test": {"max_images": 1, "batch_size": 1},
}


def _leaks(root: Path, output: str, secrets: tuple[str, ...]) -> list[str]:
    """Where any of `secrets` shows: the printed output, or a file under `root` (bytes, so
    checkpoints, SQLite files and images are searched too)."""
    found = [f"output: {s!r}" for s in secrets if s in output]
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {s!r}" for s in secrets if s.encode() in data]
    return found


def _trainyard(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = trainyard(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# --- the database URL, given any way but the environment: refused, and said where it belongs ---------

def _config_file(tmp_path: Path) -> str:
    path = tmp_path / "with-db.yaml"
    path.write_text(yaml.safe_dump({**TINY, "database": {"url": DB_URL}}))
    return str(path)


def _sweep_file(tmp_path: Path) -> str:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump([{"train.lr": 0.01}, {"database.url": DB_URL}]))
    return str(path)


REFUSED = {
    "--set": lambda tmp: ["--set", f"database.url={DB_URL}"],
    "--set section": lambda tmp: ["--set", f"database={{url: '{DB_URL}'}}"],
    "-p overrides": lambda tmp: ["-p", f"overrides='database.url={DB_URL}' train.iterations=1"],
    "--sweep grid": lambda tmp: ["--sweep", "database.url=[sqlite:///a.db,postgresql://trainer:s3cr3t-PW@db/x]"],
    "--sweep file": lambda tmp: ["--sweep", _sweep_file(tmp)],
    "--config": lambda tmp: ["--config", _config_file(tmp)],
    "-p config": lambda tmp: ["-p", f"config={_config_file(tmp)}"],
}


@pytest.mark.parametrize("way", REFUSED)
def test_a_database_url_outside_the_environment_is_refused_before_anything_runs(
        way: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    code, output = _trainyard(capsys, "run", "--local", "--output", str(runs), *REFUSED[way](tmp_path))
    assert code == 2 and "database.url is a secret" in output and "TRAINYARD_DATABASE_URL" in output, output
    assert "Traceback" not in output and not runs.exists(), "refused before the sample repo or a run folder is made"
    files = tmp_path / "searched"
    files.mkdir()
    assert _leaks(files, output, PIECES) == []


def test_a_step_refuses_the_database_url_in_set_list(capsys: pytest.CaptureFixture[str]) -> None:
    from steps.record.__main__ import main as record

    code = run_cli(record, ["--repo", "x", "--set-list", f"'database.url={DB_URL}'"])
    output = capsys.readouterr().err
    assert code == 2 and "database.url is a secret" in output and _leaks(Path("/nonexistent"), output, PIECES) == []


def test_submit_refuses_the_database_url_before_it_reaches_the_workflow(capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on the server: a refusal that came later would say "cannot reach".
    for parameter in (f"overrides=database.url={DB_URL}",
                      'sweep=[{"branch": "b0", "overrides": "database.url=postgresql://u:s3cr3t-PW@h/db"}]'):
        code, output = _trainyard(capsys, "submit", "--server", "http://127.0.0.1:9", "-p", parameter)
        assert code == 2 and "database.url is a secret" in output and "cannot reach" not in output, output
        assert _leaks(Path("/nonexistent"), output, PIECES) == []


def test_submit_never_echoes_the_servers_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _trainyard(capsys, "submit", "--server", f"https://admin:{TOKEN}@127.0.0.1:9", "--token", "t",
                              "-n", "argo", "-p", "annotation-version=annotations/v1")
    assert code == 2 and "cannot reach the Argo server at https://admin:***@127.0.0.1:9" in output, output
    assert TOKEN not in output


# --- secrets that a run carries: redacted in everything it writes and prints --------------------------

@pytest.mark.integration
@pytest.mark.e2e
def test_a_whole_run_with_the_database_and_webhook_secrets_writes_and_prints_neither(
        sample_repo: Path, fresh_postgres: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The test server trusts local connections: the password rides along in the URL, unused.
    url = fresh_postgres.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
    monkeypatch.setenv("TRAINYARD_DATABASE_URL", url)
    monkeypatch.setenv("TRAINYARD_WEBHOOK_URL", f"https://hook:{TOKEN}@127.0.0.1:9/services/T0/B0/{TOKEN}")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    runs = tmp_path / "runs"

    code, output = _trainyard(capsys, "run", "--local", "--config", str(config), "--output", str(runs),
                              "--dataset-repo", str(sample_repo))

    assert code == 0, output
    assert "database: postgresql://postgres:***@127.0.0.1" in output  # the header says which, not how
    assert "warning: webhook at 127.0.0.1:9 unreachable" in output
    assert _leaks(tmp_path, output, (*PIECES, TOKEN)) == []


@pytest.mark.integration
def test_tokens_in_the_repo_webhook_and_weights_urls_of_a_failing_run_show_nowhere(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAINYARD_DATABASE_URL", raising=False)
    monkeypatch.delenv("TRAINYARD_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("TRAINYARD_VCS_TIMEOUT", "60")
    runs = tmp_path / "runs"
    code, output = _trainyard(
        capsys, "run", "--local", "--output", str(runs),
        "--dataset-repo", f"https://oauth2:{TOKEN}@127.0.0.1:9/plates.git",
        "-p", f"webhook-url=https://hook:{TOKEN}@127.0.0.1:9/services/T0/B0/{TOKEN}",
        "--set", f"model.pretrained=https://weights:{TOKEN}@127.0.0.1:9/w.pth?token={TOKEN}")

    assert code == 1, output
    # git's own message keeps the token out; so does ours around it
    assert "git ls-remote https://oauth2:***@127.0.0.1:9/plates.git failed" in output, output
    assert "warning: webhook at 127.0.0.1:9 unreachable" in output
    assert _leaks(tmp_path, output, (TOKEN,)) == []


def test_the_environment_secrets_stay_out_of_a_config_error(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRAINYARD_DATABASE_URL", DB_URL)
    code, output = _trainyard(capsys, "run", "--local", "--output", os.devnull + "/x", "--set", "train.lr=-1")
    assert code == 2 and "train.lr" in output and _leaks(Path("/nonexistent"), output, PIECES) == []
