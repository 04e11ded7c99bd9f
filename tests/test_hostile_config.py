"""Hostile and careless configuration: the database URL stays secret, YAML cannot explode, bad
values are one line quoting a short excerpt, and unusable SQLite files are named."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from steps.config import dump_config, load_config, save_config
from steps.db import Database
from steps.redact import redact, redact_value, scrub
from steps.errors import ConfigError, ExternalError

SECRET = "s3cr3t-Pw"


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://trainer:s3cr3t-Pw@db:5432/trainyard", "postgresql://trainer:***@db:5432/trainyard"),
        ("postgresql://trainer:s3cr3t@Pw@db/trainyard", "postgresql://trainer:***@db/trainyard"),
        ("postgresql://trainer:s3cr/3t-Pw@db/trainyard", "postgresql://trainer:***@db/trainyard"),
        ("postgresql://trainer@db/trainyard?password=s3cr3t-Pw", "postgresql://trainer@db/trainyard?password=***"),
        ("postgresql://db/trainyard?sslmode=require&password=s3cr3t-Pw&user=t",
         "postgresql://db/trainyard?sslmode=require&password=***&user=t"),
        ("host=db password=s3cr3t-Pw dbname=trainyard", "host=db password=*** dbname=trainyard"),
        ("host=db PASSWORD = s3cr3t-Pw dbname=trainyard", "host=db PASSWORD = *** dbname=trainyard"),
        ("host=db password='s3cr3t Pw \\' x' dbname=trainyard", "host=db password=*** dbname=trainyard"),
        ('host=db password="s3cr3t Pw" dbname=trainyard', "host=db password=*** dbname=trainyard"),
        ("host=db sslpassword=s3cr3t-Pw", "host=db sslpassword=***"),
        ("sqlite:///runs/trainyard.sqlite", "sqlite:///runs/trainyard.sqlite"),
        ("postgresql://trainer@db/trainyard", "postgresql://trainer@db/trainyard"),
        # libpq's own forms: a percent-encoded key, a raw space in the password, an escaped space
        ("postgresql://trainer@db/trainyard?%70assword=s3cr3t-Pw", "postgresql://trainer@db/trainyard?%70assword=***"),
        ("postgresql://trainer:s3cr3t Pw@db/trainyard", "postgresql://trainer:***@db/trainyard"),
        ("host=db password=s3cr3t\\ Pw dbname=x", "host=db password=*** dbname=x"),
        # other URLs' credentials: git's token forms, webhook tokens in the path or the query
        ("https://oauth2:s3cr3t-Pw@git.example.com/plates.git", "https://oauth2:***@git.example.com/plates.git"),
        ("https://s3cr3t-Pw@github.com/org/plates.git", "https://***@github.com/org/plates.git"),
        ("https://hooks.example.com/services/T000/B000/s3cr3tPw0123456789abcdefXY",
         "https://hooks.example.com/services/T000/B000/***"),
        ("https://chat.example.com/v1/spaces/A/messages?key=s3cr3t-Pw&token=s3cr3t-Pw",
         "https://chat.example.com/v1/spaces/A/messages?key=***&token=***"),
        ("ssh://git@github.com/org/plates.git", "ssh://git@github.com/org/plates.git"),
        ("https://argo.example.com:2746/workflows/argo/trainyard-pipeline-x7k2p",
         "https://argo.example.com:2746/workflows/argo/trainyard-pipeline-x7k2p"),
    ],
    ids=["userinfo", "at-in-password", "slash-in-password", "query", "query-middle", "keyword", "keyword-spaces",
         "keyword-quoted-escape", "keyword-double-quoted", "sslpassword", "sqlite", "no-password",
         "percent-encoded-key", "space-in-password", "escaped-space", "git-token", "bare-token", "path-token",
         "query-tokens", "ssh-user", "port-is-no-password"],
)
def test_redact_hides_the_password_in_every_dsn_form(dsn: str, expected: str) -> None:
    assert redact(dsn) == expected
    assert "s3cr" not in redact(f"error: cannot use {dsn} today")


def test_redact_value_takes_spaces_in_a_query_password() -> None:
    assert redact_value("postgresql://db/x?password=s3cr3t Pw&sslmode=require") == \
        "postgresql://db/x?password=***&sslmode=require"


def test_scrub_removes_password_fragments_a_driver_quotes() -> None:
    url = f"host=db password='{SECRET}' dbname=x"
    assert SECRET not in scrub(f'invalid dsn: missing "=" after "{SECRET}" in connection info string', url)


@pytest.mark.integration
def test_postgres_connection_error_does_not_echo_the_password(postgres_url: str) -> None:  # noqa: F811
    from urllib.parse import urlparse

    parsed = urlparse(postgres_url)
    wrong = f"postgresql://nobody:{SECRET}@{parsed.hostname}:{parsed.port}/nodb?password={SECRET}"
    with pytest.raises(ExternalError) as caught:
        Database(wrong).migrate()
    assert SECRET not in str(caught.value) and "cannot connect to database" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [f"postgresql://trainer:{SECRET}@db/trainyard", f"postgresql://db/trainyard?password={SECRET}",
     f"host=db password={SECRET}"],
)
def test_saved_config_has_no_database_url_and_still_loads(url: str, tmp_path: Path) -> None:
    config = load_config(None, ["train.iterations=7"])
    config.database.url = url  # set in code (the local runner's default), never from a file or override
    saved = save_config(config, tmp_path / "config.yaml")
    assert SECRET not in saved.read_text() and "url" not in dump_config(config)["database"]
    again = load_config(saved)
    assert again.train.iterations == 7
    assert config.database.url == url, "the running step keeps the real URL"


def test_saved_config_redacts_other_urls_credentials(tmp_path: Path) -> None:
    config = load_config(None, [f"dataset.repo=https://oauth2:{SECRET}@git.example.com/plates.git"])
    saved = save_config(config, tmp_path / "config.yaml")
    assert SECRET not in saved.read_text() and "oauth2:***@git.example.com" in saved.read_text()


def test_saved_config_keeps_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        saved = save_config(load_config(None, []), tmp_path / "config.yaml")
    finally:
        os.umask(old)
    assert saved.stat().st_mode & 0o777 == 0o644


def test_a_long_url_is_redacted_before_it_is_cut() -> None:
    url = f"postgresql://trainyard_user:Very{SECRET}Password123@db.example.com:5432/trainyard_production"
    with pytest.raises(ConfigError) as caught:
        load_config(None, [f"dataset.labels={url}"])
    assert "dataset.labels" in str(caught.value)
    assert not any(url[i:i + 6] in str(caught.value) for i in range(url.index(":V") + 1, url.index("@") - 5))


def test_unsupported_database_scheme_is_redacted() -> None:
    with pytest.raises(ConfigError) as caught:
        Database(f"mysql://u:{SECRET}@h/db")
    assert SECRET not in str(caught.value) and "mysql" in str(caught.value)


def _alias_bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_in_a_config_file_is_refused_quickly(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("train:\n  iterations: 5\n" + _alias_bomb())
    with pytest.raises(ConfigError) as caught:
        load_config(bomb)
    message = str(caught.value)
    assert str(bomb) in message and "alias" in message and len(message) < 300


def test_alias_bomb_in_set_is_refused_with_a_short_message() -> None:
    bomb = "{" + _alias_bomb().replace("\n", ", ").rstrip(", ") + "}"
    with pytest.raises(ConfigError) as caught:
        load_config(None, [f"dataset.labels={bomb}"])
    assert "dataset.labels" in str(caught.value) and "alias" in str(caught.value) and len(str(caught.value)) < 300


def test_plain_anchors_still_work(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("dataset:\n  labels: &names [plate, A]\n")
    assert load_config(file).dataset.labels == ["plate", "A"]


def test_a_huge_bad_value_is_quoted_as_a_short_excerpt() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["train.iterations=" + "9" * 100 + "x" * 100_000])
    assert "train.iterations" in str(caught.value) and len(str(caught.value)) < 300


def test_non_utf8_config_is_one_line(tmp_path: Path) -> None:
    file = tmp_path / "latin1.yaml"
    file.write_bytes("dataset:\n  labels: [plaque, caract\u00e8re]\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml: not UTF-8 text \(byte 34\); save it as UTF-8"):
        load_config(file)


def test_unbalanced_quote_in_set_list_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"--set-list .*No closing quotation; quote each value whole"):
        load_config(None, [], "train.iterations=5 'dataset.labels=[a, b]")


def test_unbalanced_quote_in_set_list_through_a_step_is_one_line_without_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "steps.train", "--dataset-dir", "x", "--output", "y",
                           "--set-list", "train.lr='0.1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    # Without --config the step first notes that the built-in defaults apply; then one error line.
    errors = [line for line in done.stderr.splitlines() if not line.startswith("note: ")]
    assert len(errors) == 1 and "No closing quotation" in errors[0]


@pytest.mark.parametrize("override", ["train.lr=.inf", "train.lr=.nan", "train.lr_steps=[0.5, .inf]",
                                      "promotion.margin=-.inf", "evaluate.dv_iou=.nan"])
def test_non_finite_numbers_are_refused(override: str) -> None:
    with pytest.raises(ConfigError, match="finite number"):
        load_config(None, [override])


@pytest.mark.parametrize("override", ["promotion.registry=gs://", "promotion.registry=gs:///models",
                                      "train.checkpoint_uri=gs://"])
def test_gs_uri_without_a_bucket_is_refused(override: str) -> None:
    with pytest.raises(ConfigError, match="gs://BUCKET"):
        load_config(None, [override])


def test_models_command_refuses_an_empty_bucket_instead_of_a_folder_named_gs(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "workflows.cli", "models", "--registry", "gs://", "list"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == 2 and "gs://BUCKET" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "gs:").exists()


def test_directory_as_sqlite_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "db.sqlite").mkdir()
    with pytest.raises(ExternalError, match=r"sqlite:///.*db.sqlite: cannot use this SQLite file \(unable to open"):
        Database(f"sqlite:///{tmp_path / 'db.sqlite'}").migrate()


def test_garbage_sqlite_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "db.sqlite").write_bytes(os.urandom(4096))
    with pytest.raises(ExternalError, match=r"db.sqlite: cannot use this SQLite file \(file is not a database\)"):
        Database(f"sqlite:///{tmp_path / 'db.sqlite'}").migrate()


def test_read_only_sqlite_file_is_one_line() -> None:
    folder = Path(tempfile.mkdtemp(prefix="trainyard-ro-"))  # outside pytest's 0700 folders: nobody can reach it
    folder.chmod(0o777)  # the folder stays writable: only the file is read-only
    path = folder / "db.sqlite"
    Database(f"sqlite:///{path}").migrate()
    path.chmod(0o444)
    code = (
        "import sys; from steps.db import Database; from steps.errors import ExternalError\n"
        "try:\n"
        f"    with Database('sqlite:///{path}').transaction() as tx:\n"
        "        tx.execute(\"INSERT INTO schema_migrations VALUES (99, 'x')\")\n"
        "except ExternalError as exc:\n    print(exc); sys.exit(3)\n"
    )
    # root ignores file modes: run as nobody then (setpriv is part of util-linux).
    prefix = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"] if os.geteuid() == 0 else []
    if prefix and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot make a file read-only")
    done = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    shutil.rmtree(folder)
    assert done.returncode == 3, done.stderr
    assert "cannot use this SQLite file (attempt to write a readonly database)" in done.stdout


def test_safe_yaml_dump_of_saved_config_round_trips(tmp_path: Path) -> None:
    config = load_config(None, ["dataset.labels=[plate, '0']"])
    saved = yaml.safe_load(save_config(config, tmp_path / "c.yaml").read_text())
    assert saved["dataset"]["labels"] == ["plate", "0"]


def test_deeply_nested_yaml_is_one_line(tmp_path: Path) -> None:
    file = tmp_path / "deep.yaml"
    file.write_text("train: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(ConfigError, match="deep.yaml: not valid YAML: nested too deeply"):
        load_config(file)


def test_a_huge_unknown_key_is_quoted_short() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["train." + "k" * 100_000 + "=1"])
    assert "unknown key" in str(caught.value) and len(str(caught.value)) < 600


@pytest.mark.parametrize("value", ["&a [*a]", "&a {x: *a}", "&a [1, [2, *a]]", "&a [&b [*b]]"])
def test_a_recursive_alias_is_refused_at_once_through_every_channel(value: str, tmp_path: Path) -> None:
    # Safe loading builds an infinite structure from these; walking it (validation, a message) never ends.
    file = tmp_path / "recursive.yaml"
    file.write_text(f"dataset:\n  labels: {value}\n")
    channels = {
        "config file": lambda: load_config(file),
        "--set": lambda: load_config(None, [f"train.lr={value}"]),
        "--set-list": lambda: load_config(None, [], f"'train.lr={value}'"),
    }
    for channel, call in channels.items():
        with pytest.raises(ConfigError, match="recursive alias") as caught:
            call()
        assert len(str(caught.value)) < 300, channel


@pytest.mark.parametrize("parameters", [{"overrides": "train.lr='0.1"}, {"overrides": "'train.lr=&a [*a]'"}])
def test_bad_overrides_parameter_of_a_local_run_is_one_line(parameters: dict[str, str], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from workflows.cli import main

    code = main(["run", "--local", "--output", str(tmp_path / "runs"),
                 *(arg for name, value in parameters.items() for arg in ("-p", f"{name}={value}"))])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert ("No closing quotation" in err or "recursive alias" in err) and not (tmp_path / "runs").exists()


def test_a_corrupt_sqlite_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    Database(f"sqlite:///{path}").migrate()
    with path.open("r+b") as file:  # a valid header, garbage pages: the first query finds out
        file.seek(4096)
        file.write(os.urandom(path.stat().st_size - 4096))
    with pytest.raises(ExternalError, match=r"db.sqlite: cannot use this SQLite file \(database disk image is "
                                            r"malformed\); .* or move a corrupt file aside"):
        Database(f"sqlite:///{path}").migrate()


@pytest.mark.parametrize(("url", "said"), [
    (f"postgresql://u:{SECRET}@127.0.0.1:1/db?colour=blue", r'invalid URI query parameter: "colour"'),
    (f"postgresql://u:{SECRET}@[::1/db", r"malformed \(Invalid IPv6 URL\)"),
    (f"postgresql://u:{SECRET}@[::1]:99999/db", r"cannot connect to database|malformed"),
])
def test_a_database_url_that_libpq_cannot_read_is_one_line(url: str, said: str, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from workflows.cli import main

    monkeypatch.setenv("TRAINYARD_DATABASE_URL", url)
    assert main(["runs"]) == 2
    err = capsys.readouterr().err
    assert re.search(said, err) and err.count("\n") == 1 and SECRET not in err and "TRAINYARD_DATABASE_URL" in err


def test_json_files_keep_strings_that_only_look_like_query_parameters(tmp_path: Path) -> None:
    from steps.jsonio import write_json

    # COCO's compressed RLE counts use the characters 0..o: `?`, `=`, `;`, `@` and capitals among them.
    rle = {"size": [30, 40], "counts": "0?aKEY=1;PASS=2@SIG=3"}
    url = f"https://u:{SECRET}@h/x?token={SECRET}"
    data = json.loads(write_json(tmp_path / "x.json", {"segmentation": rle, "source": url}).read_text())
    assert data["segmentation"] == rle and SECRET not in data["source"]
