"""steps.storage against a local folder and a real GCS emulator."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from steps import storage
from steps.errors import ExternalError, InputError
from tests.gcs_emulator import gcs_emulator  # noqa: F401


@pytest.fixture(params=["local", pytest.param("gcs", marks=pytest.mark.integration)])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty storage location on each backend."""
    if request.param == "local":
        return str(tmp_path / "store")
    bucket = request.getfixturevalue("gcs_emulator").make_bucket(f"t-{uuid.uuid4().hex[:12]}")
    return storage.join(bucket, "store")


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_join_and_is_gcs() -> None:
    assert storage.join("gs://b/p/", "models", "m1") == "gs://b/p/models/m1"
    assert storage.join("gs://b", "x.json") == "gs://b/x.json"
    assert storage.join("reg", "models") == str(Path("reg", "models"))
    assert storage.is_gcs("gs://b") and not storage.is_gcs("/tmp/gs")


def test_upload_download_round_trip(root: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "model.pth").write_bytes(bytes(range(256)) * 10)
    (src / "sub" / "config.yaml").write_text("a: 1\n")

    storage.upload_dir(src, storage.join(root, "m1"))
    got = storage.download_dir(storage.join(root, "m1"), tmp_path / "dst")

    assert _tree(got) == _tree(src)
    assert storage.list_dirs(root) == ["m1"]
    assert storage.list_dirs(storage.join(root, "m1")) == ["sub"]
    assert storage.exists(storage.join(root, "m1")) and storage.exists(storage.join(root, "m1", "model.pth"))
    assert not storage.exists(storage.join(root, "m2"))


def test_text_read_write(root: str) -> None:
    uri = storage.join(root, "a", "note.json")
    assert storage.read_text(uri) is None
    storage.write_text(uri, '{"v": 1}')
    storage.write_text(uri, '{"v": 2}')
    assert storage.read_text(uri) == '{"v": 2}'


def test_conditional_write_refuses_a_stale_version(root: str) -> None:
    uri = storage.join(root, "pointer.json")
    storage.write_text_if_unchanged(uri, "first", None)
    with pytest.raises(storage.ConcurrentUpdateError):
        storage.write_text_if_unchanged(uri, "again", None)  # "must not exist" no longer holds
    _, seen = storage.read_versioned(uri)
    storage.write_text(uri, "someone else")
    with pytest.raises(storage.ConcurrentUpdateError, match="pointer.json"):
        storage.write_text_if_unchanged(uri, "mine", seen)
    text, current = storage.read_versioned(uri)
    assert text == "someone else"
    storage.write_text_if_unchanged(uri, "mine", current)
    assert storage.read_text(uri) == "mine"


def test_download_of_a_missing_folder_is_an_input_error(root: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope"):
        storage.download_dir(storage.join(root, "nope"), tmp_path / "dst")
    assert storage.list_dirs(storage.join(root, "nope")) == []


@pytest.mark.integration
def test_missing_bucket_is_a_one_line_error(gcs_emulator) -> None:  # noqa: F811
    for action in (
        lambda: storage.read_text("gs://no-such-bucket/x.json"),
        lambda: storage.write_text("gs://no-such-bucket/x.json", "x"),
        lambda: storage.exists("gs://no-such-bucket/x"),
    ):
        with pytest.raises(ExternalError, match="gs://no-such-bucket not found") as caught:
            action()
        assert "\n" not in str(caught.value)


def test_unreachable_gcs_is_an_external_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("google.cloud.storage")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setattr(storage, "GCS_RETRY_SECONDS", 0.5)
    with pytest.raises(ExternalError, match=r"gs://b/x\.json: GCS at http://127.0.0.1:9 failed") as caught:
        storage.read_text("gs://b/x.json")
    assert "STORAGE_EMULATOR_HOST" in str(caught.value) and "\n" not in str(caught.value)


def test_failed_local_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "p.json"
    storage.write_text(str(target), "old")

    def crash(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "replace", crash)
    with pytest.raises(ExternalError, match="No space left"):
        storage.write_text(str(target), "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]  # no temp file left behind
