"""Bucket object names, registry files and checkpoints are not ours: downloads stay inside their
folder, a corrupt or hostile production.json promotes nothing, and faults are one-line errors."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from steps import registry, storage
from steps.errors import ExternalError, InputError, TrainyardError
from steps.models.checkpoints import RESUME_KEYS, check_resumable, load_latest, open_checkpoint, save_checkpoint
from steps.models.durable_checkpoints import CheckpointMirror
from tests.gcs_emulator import gcs_emulator  # noqa: F401

ESCAPES = ["../../x", "a/../../../x", "..\\..\\x", "/abs/x"]


def _bucket(emulator) -> tuple[str, object]:  # noqa: ANN001
    from google.cloud import storage as gcs

    uri = emulator.make_bucket(f"t-{uuid.uuid4().hex[:12]}")
    return uri, gcs.Client.create_anonymous_client().bucket(uri[len("gs://"):])


def _put(bucket, name: str, data: bytes = b"x") -> None:  # noqa: ANN001
    bucket.blob(name).upload_from_string(data)


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", ["a/../../x", "/etc/x", "a\\..\\..\\x", "", "a/../b"])
def test_inside_refuses_names_that_leave_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="refusing to download"):
        storage.inside(tmp_path / "dest", name, f"object {name!r}")


def test_inside_refuses_a_symlink_out_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="through a symlink"):
        storage.inside(tmp_path / "dest", "link/x", "object 'link/x'")
    assert storage.inside(tmp_path / "dest", "sub/x.pth", "ok") == tmp_path / "dest" / "sub" / "x.pth"


@pytest.mark.integration
@pytest.mark.parametrize("name", ESCAPES)
def test_registry_fetch_never_writes_outside_its_destination(gcs_emulator, tmp_path: Path, name: str) -> None:  # noqa: F811
    uri, bucket = _bucket(gcs_emulator)
    reg = storage.join(uri, "registry")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.pth").write_bytes(b"w")
    (folder / "config.yaml").write_text("model: {}\n")
    model = registry.register(reg, folder, "m", {"segm/AP": 0.5}, {})
    _put(bucket, f"registry/models/{model.model_id}/{name}", b"evil")
    dest = tmp_path / "deep" / "er" / "dest"

    with pytest.raises(InputError, match="refusing to download") as caught:
        registry.fetch_model(reg, model.model_id, dest)

    assert "\n" not in str(caught.value)
    assert _files(tmp_path) == {"model/model.pth", "model/config.yaml"}, "nothing written, inside or out"


@pytest.mark.integration
def test_checkpoint_mirror_restore_never_writes_outside_the_run(gcs_emulator, tmp_path: Path) -> None:  # noqa: F811
    uri, bucket = _bucket(gcs_emulator)
    _put(bucket, "run/checkpoints/model_0000002.pth", b"ckpt")
    _put(bucket, "run/tensorboard/../../escaped", b"evil")
    out = tmp_path / "a" / "out"

    with pytest.raises(InputError, match="refusing to download"):
        CheckpointMirror(storage.join(uri, "run"), out).restore()

    assert not (tmp_path / "escaped").exists() and not (tmp_path / "a" / "escaped").exists()
    assert not out.exists() or _files(out) == set(), "every name is checked before anything is written"


def test_checkpoint_mirror_restore_refuses_a_symlinked_sidecar_folder(tmp_path: Path) -> None:
    remote = tmp_path / "durable"
    (remote / "tensorboard").mkdir(parents=True)
    (remote / "tensorboard" / "events.out").write_bytes(b"e")
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "victim").mkdir()
    (out / "tensorboard").symlink_to(tmp_path / "victim")  # planted by someone sharing the folder

    with pytest.raises(InputError, match="through a symlink"):
        CheckpointMirror(str(remote), out).restore()
    assert not any((tmp_path / "victim").iterdir())


def _registry_with_two_models(tmp_path: Path) -> tuple[str, list[str]]:
    reg = str(tmp_path / "registry")
    ids = []
    for name in ("a", "b"):
        folder = tmp_path / f"m-{name}"
        folder.mkdir()
        (folder / "model.pth").write_bytes(name.encode())
        (folder / "config.yaml").write_text("model: {}\n")
        ids.append(registry.register(reg, folder, name, {"segm/AP": 0.5}, {}).model_id)
    return reg, ids


@pytest.mark.parametrize(
    "content",
    [b"null", b"[]", b"{}", b'"x"', b"\xff\xfe{}", b"{not json",
     b'{"model_id": "M", "uri": "u", "previous": "oops"}',
     b'{"model_id": "M", "uri": "u", "previous": {"model_id": 3, "uri": "u"}}',
     b'{"model_id": "../../evil", "uri": "u"}',
     b'{"model_id": "M", "uri": "u", "metrics": []}'],
    ids=["null", "list", "empty", "string", "non-utf8", "not-json", "previous-oops", "previous-bad-id",
         "escaping-id", "metrics-list"],
)
def test_corrupt_production_json_is_an_error_and_nothing_is_promoted(tmp_path: Path, content: bytes) -> None:
    reg, (first, _second) = _registry_with_two_models(tmp_path)
    pointer = tmp_path / "registry" / "production.json"
    pointer.write_bytes(content)

    for call in (lambda: registry.production(reg), lambda: registry.promote(reg, first, "test"),
                 lambda: registry.rollback(reg), lambda: registry.fetch_model(reg, "production", tmp_path / "d")):
        with pytest.raises(TrainyardError) as caught:
            call()
        assert str(pointer) in str(caught.value) and "\n" not in str(caught.value)
    assert pointer.read_bytes() == content, "nothing was promoted over it"
    assert not (tmp_path / "d").exists()


def test_model_id_that_points_outside_the_registry_is_refused(tmp_path: Path) -> None:
    reg, _ = _registry_with_two_models(tmp_path)
    evil = tmp_path / "evil"
    (evil / "models").mkdir(parents=True)
    for call in (lambda: registry.show(reg, "../../evil"), lambda: registry.promote(reg, "../evil", "r"),
                 lambda: registry.fetch_model(reg, "..", tmp_path / "d")):
        with pytest.raises(InputError, match="is not a model id"):
            call()


def test_registry_path_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    file = tmp_path / "registry"
    file.write_text("oops")
    for call in (lambda: registry.production(str(file)), lambda: registry.list_models(str(file))):
        with pytest.raises(TrainyardError, match="is a file, not a folder"):
            call()


@pytest.mark.parametrize(("name", "content"), [("lineage.json", b"[1]"), ("lineage.json", b"{}"),
                                               ("lineage.json", b"{oops"), ("metrics.json", b"[]"),
                                               ("metrics.json", b"\xff")])
def test_malformed_lineage_or_metrics_names_the_file(tmp_path: Path, name: str, content: bytes) -> None:
    reg, (first, _) = _registry_with_two_models(tmp_path)
    path = tmp_path / "registry" / "models" / first / name
    path.write_bytes(content)
    for call in (lambda: registry.show(reg, first), lambda: registry.list_models(reg)):
        with pytest.raises(TrainyardError) as caught:
            call()
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_registry_files_keep_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        reg, (first, _) = _registry_with_two_models(tmp_path)
        registry.promote(reg, first, "shared")
    finally:
        os.umask(old)
    root = tmp_path / "registry"
    for path in [root / "production.json", *(root / "models" / first).iterdir()]:
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_checkpoint_write_on_a_full_disk_is_one_line_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "model_0000002.pth"
    save_checkpoint({"model": {"w": torch.zeros(4)}}, path)
    before = path.read_bytes()
    # A real write failure: a file size limit makes the kernel refuse the write (EFBIG), as a full
    # disk does (ENOSPC), without needing a small filesystem.
    code = (
        "import resource, signal, sys, torch\n"
        "from steps.models.checkpoints import save_checkpoint\nfrom steps.errors import ExternalError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))\n"
        f"try:\n    save_checkpoint({{'model': {{'w': torch.ones(1_000_000)}}}}, {str(path)!r})\n"
        "except ExternalError as exc:\n    print(exc); sys.exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith(f"{path}: cannot write the checkpoint (") and done.stdout.count("\n") == 1
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name], "no temp file left"


@pytest.mark.parametrize("missing", ["optimizer", "rng", "categories", "config"])
def test_resume_from_a_checkpoint_missing_keys_is_one_line(tmp_path: Path, missing: str) -> None:
    from steps.config import Config, dump_config

    config = Config()
    state = {key: {} for key in RESUME_KEYS} | {"backend": "torchvision", "iteration": 4, "config": dump_config(config),
                                                "categories": [{"id": 1, "name": "plate"}]}
    del state[missing]
    with pytest.raises(InputError, match=f"iteration 4.* lacks {missing}.*new output folder"):
        check_resumable(state, "torchvision", config, [{"id": 1, "name": "plate"}], tmp_path)


class _Payload:
    def __reduce__(self):  # noqa: ANN204 - what a hostile file holds: a call made while loading
        return (os.system, ("touch pwned",))


def test_checkpoint_with_code_is_refused_without_advising_weights_only_false(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "model_0000002.pth"
    path.parent.mkdir()
    torch.save({"model": _Payload()}, path)
    with pytest.raises(InputError) as caught:
        open_checkpoint(path, "torchvision")
    assert "weights_only" not in str(caught.value) and "os.system" in str(caught.value).replace("posix", "os")
    with pytest.warns(UserWarning) as warned:
        assert load_latest(path.parent) is None
    assert all("weights_only" not in str(w.message) for w in warned)
    assert not Path("pwned").exists()


def test_safe_pickle_reads_weights_and_refuses_code() -> None:
    from steps.models import safe_pickle

    weights = {"conv1.w": np.arange(6, dtype=np.float32).reshape(2, 3), "blobs": {"b": np.float64(2.5)}}
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        loaded = safe_pickle.load(io.BytesIO(pickle.dumps(weights, protocol=protocol)))
        assert np.array_equal(loaded["conv1.w"], weights["conv1.w"]) and loaded["blobs"]["b"] == 2.5
    with pytest.raises(safe_pickle.UnsafePickleError, match="references posix.system"):
        safe_pickle.load(io.BytesIO(pickle.dumps({"model": _Payload()})))


def test_detectron2_refuses_a_pkl_that_runs_code(tmp_path: Path) -> None:
    pytest.importorskip("detectron2", reason="detectron2 is not importable (put its source on PYTHONPATH)")
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from steps.errors import ConfigError
    from steps.models.detectron2_backend import load_initial_weights

    marker = tmp_path / "pwned"

    class Hostile:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, (f"touch {marker}",))

    weights = tmp_path / "R-50.pkl"
    weights.write_bytes(pickle.dumps({"model": {"w": Hostile()}, "__author__": "x"}))
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    with pytest.raises(ConfigError, match="refusing to unpickle"):
        load_initial_weights(build_model(cfg), str(weights), str(weights))
    assert not marker.exists()

    # A plain weights pickle (Caffe2 layout, as detectron2's ImageNet files) still loads.
    model = build_model(cfg)
    stem = next(name for name in model.state_dict() if name.endswith("stem.conv1.weight"))
    shape = tuple(model.state_dict()[stem].shape)
    benign = tmp_path / "benign.pkl"
    benign.write_bytes(pickle.dumps({"blobs": {"conv1_w": np.ones(shape, dtype=np.float32),
                                               "conv1_w_momentum": np.zeros(shape, dtype=np.float32)}}, protocol=2))
    load_initial_weights(model, str(benign), str(benign))
    assert torch.equal(model.state_dict()[stem], torch.ones(shape))


def test_unreadable_weights_never_advise_weights_only_false(tmp_path: Path) -> None:
    from steps.config import ModelConfig
    from steps.errors import ConfigError
    from steps.models.torchvision_model import build_model, load_initial_weights

    notes = tmp_path / "notes.pth"
    notes.write_text("not a checkpoint")
    hostile = tmp_path / "hostile.pth"
    torch.save({"model": _Payload()}, hostile)
    model = ModelConfig(backbone="resnet18", min_size=64, max_size=64)
    net = build_model(model, 3)
    for path, expected in ((notes, "not a file of tensors torch can read"), (hostile, "holds a Python object")):
        with pytest.raises(ConfigError) as caught:
            load_initial_weights(net, model.model_copy(update={"pretrained": str(path)}))
        assert f"cannot read {path} as weights: " in str(caught.value) and expected in str(caught.value)
        assert "weights_only" not in str(caught.value)
        with pytest.raises(InputError) as caught:
            open_checkpoint(path, "torchvision")
        assert expected in str(caught.value) and "weights_only" not in str(caught.value)
