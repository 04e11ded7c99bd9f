"""Annotation folders built by an attacker or a careless user: each bad file is named with its reason,
no file outside the annotation folder is read, nothing blocks or exhausts memory, and a failed
write leaves the previous output as it was."""

from __future__ import annotations

import base64
import errno
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from steps.datasets.coco import build_coco
from steps.datasets.labelme import MAX_DEPTH
from steps.datasets.labelme2coco import labelme2coco
from workflows.cli import main

ROOT = Path(__file__).resolve().parents[1]
SQUARE = [[0, 0], [4, 0], [4, 4], [0, 4]]
SECRET = b"host secret, not an annotation"


def _doc(image_path: str, size: tuple[int, int] = (40, 30), **extra: object) -> dict:
    shapes = [{"label": "a", "points": SQUARE, "shape_type": "polygon", "group_id": None, "flags": {}}]
    return {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": image_path, "imageData": None,
            "imageHeight": size[1], "imageWidth": size[0], **extra}


def _write(path: Path, doc: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _good(folder: Path, name: str = "good") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (90, 90, 90)).save(folder / f"{name}.png")
    return _write(folder / f"{name}.json", _doc(f"{name}.png"))


def _png_header(width: int, height: int) -> bytes:
    """A small, valid-looking PNG that declares width x height pixels: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit per pixel, grayscale
    idat = zlib.compress(b"\0" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _skipped(out: Path) -> dict[str, str]:
    return {item["file"]: item["reason"] for item in json.loads((out / "report.json").read_text())["skipped"]}


def _images(out: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted((out / "images").iterdir())]


# --- item 2: no file outside the annotation folder is read --------------------------------------------

def test_image_paths_and_symlinks_out_of_the_annotation_folder_are_invalid(tmp_path: Path) -> None:
    ann = tmp_path / "annotations"
    _good(ann)
    secret = tmp_path / "secret.png"  # a host file beside (not inside) the annotation folder
    Image.new("RGB", (40, 30), (1, 2, 3)).save(secret)
    secret_bytes = secret.read_bytes()
    _write(ann / "dotdot.json", _doc("../secret.png"))
    _write(ann / "sub" / "backslash.json", _doc("..\\..\\secret.png"))
    _write(ann / "absolute.json", _doc(str(secret)))
    (ann / "link.png").symlink_to(secret)
    _write(ann / "symlink.json", _doc("link.png"))
    (tmp_path / "outside.json").write_text(json.dumps(_doc("annotations/good.png")))
    (ann / "json-link.json").symlink_to(tmp_path / "outside.json")
    # `..` that stays inside the folder is a normal labelme layout (JSON and images side by side).
    _good(ann / "images", "inner")
    _write(ann / "json" / "inner.json", _doc("../images/inner.png"))
    (ann / "images" / "inner.json").unlink()

    out = tmp_path / "out"
    result = labelme2coco(ann, out, on_invalid="skip")
    assert sorted(image["file_name"] for image in json.loads((out / "train.json").read_text())["images"]) == [
        "good.png", "inner.png"]
    assert result.counts == {"train": 2}
    skipped = _skipped(out)
    assert skipped["dotdot.json"] == (
        "imagePath '../secret.png' leads out of the annotation folder; only images inside it are used")
    assert skipped["sub/backslash.json"].startswith("imagePath '..\\\\..\\\\secret.png' leads out of the annotation")
    assert skipped["absolute.json"].startswith(f"imagePath '{secret}' is absolute")
    assert skipped["symlink.json"] == (
        f"imagePath 'link.png' leads out of the annotation folder through the symlink link.png (to {secret}); "
        "only images inside it are used")
    assert skipped["json-link.json"].startswith("leads out of the annotation folder through the symlink json-link.json")
    assert secret_bytes not in _images(out)


def test_dataset_folders_must_stay_inside_the_checkout(tmp_path: Path) -> None:
    from steps.config import load_config
    from steps.errors import ConfigError

    for key, value, problem in [("dataset_dir", str(tmp_path / "victim"), "is absolute"),
                                ("dataset_dir", "../victim", "contains '..'"),
                                ("annotations_dir", "/etc", "is absolute"),
                                ("dataset_dir", ".git", r"is a hidden folder \(\.git, \.dvc, \.\.\.\)"),
                                ("dataset_dir", "--help", "starts with '-'")]:
        with pytest.raises(ConfigError, match=rf"dataset\.{key}: '{value}' {problem}; give a folder inside"):
            load_config(None, [f"dataset.{key}={value}"])
    assert load_config(None, ["dataset.dataset_dir=./data/coco/"]).dataset.dataset_dir == "data/coco"


# --- item 10: one bad file never stops a conversion with on_invalid=skip ------------------------------

def test_bombs_deep_json_and_fifos_are_invalid_files_not_crashes(tmp_path: Path) -> None:
    ann = tmp_path / "annotations"
    _good(ann)
    # A decompression bomb as the image file: a 4 kB PNG declaring 10^10 pixels (PIL raises above 2x its limit).
    (ann / "bomb.png").write_bytes(_png_header(100_000, 100_000))
    _write(ann / "bomb-file.json", _doc("bomb.png", size=(100_000, 100_000)))
    # As imageData, between PIL's limit and twice it (where PIL itself only warns).
    side = int((Image.MAX_IMAGE_PIXELS * 1.2) ** 0.5)
    _write(ann / "bomb-data.json", _doc("x.png", size=(side, side),
                                        imageData=base64.b64encode(_png_header(side, side)).decode()))
    # As the mask of a mask shape on a normal image.
    Image.new("RGB", (40, 30)).save(ann / "masked.png")
    mask_shape = {"label": "a", "points": [[0, 0], [10, 10]], "shape_type": "mask", "group_id": None, "flags": {},
                  "mask": base64.b64encode(_png_header(100_000, 100_000)).decode()}
    _write(ann / "bomb-mask.json", {**_doc("masked.png"), "shapes": [mask_shape]})
    # A mask that is no bomb but far larger than its image: refused before it is decoded.
    big_mask = dict(mask_shape, mask=base64.b64encode(_png_header(4000, 4000)).decode())
    Image.new("RGB", (40, 30)).save(ann / "masked2.png")
    _write(ann / "big-mask.json", {**_doc("masked2.png"), "shapes": [big_mask]})
    # JSON nested past the parser's recursion limit, and nested deeper than labelme ever does.
    _write(ann / "deep.json", "[" * 200_000 + "]" * 200_000)
    deep_flags: object = 1
    for _ in range(MAX_DEPTH + 5):
        deep_flags = {"x": deep_flags}
    _write(ann / "deep-flags.json", _doc("good.png", flags=deep_flags))
    # A FIFO named like a labelme file (reading it would block forever), and one as the image.
    os.mkfifo(ann / "pipe.json")
    os.mkfifo(ann / "pipe.png")
    _write(ann / "pipe-image.json", _doc("pipe.png"))

    out = tmp_path / "out"
    result = labelme2coco(ann, out, on_invalid="skip", workers=1)
    assert result.counts == {"train": 1}
    skipped = _skipped(out)
    assert sorted(skipped) == ["big-mask.json", "bomb-data.json", "bomb-file.json", "bomb-mask.json", "deep-flags.json",
                               "deep.json", "pipe-image.json", "pipe.json"]
    assert skipped["bomb-file.json"].startswith(f"image 'bomb.png' has more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels")
    assert skipped["bomb-data.json"].startswith(
        f"the embedded image (imageData) is {side}x{side}, more than {Image.MAX_IMAGE_PIXELS:,} pixels")
    assert skipped["bomb-mask.json"].startswith("shape 0 ('a') has a mask that has more than")
    assert skipped["big-mask.json"] == (
        "shape 0 ('a') has a 4000x4000 mask, larger than the 40x30 image; redraw it in labelme")
    assert skipped["deep.json"] == f"JSON nested more than {MAX_DEPTH} levels deep; not a labelme file"
    assert skipped["deep-flags.json"] == skipped["deep.json"]
    assert skipped["pipe.json"] == "is a FIFO, not a labelme JSON file"
    assert skipped["pipe-image.json"] == "image 'pipe.png' is a FIFO, not an image file"


def test_a_bomb_in_a_worker_process_is_a_skipped_file_too(tmp_path: Path) -> None:
    ann = tmp_path / "annotations"
    paths = [_good(ann, f"good{i}") for i in range(3)]
    (ann / "bomb.png").write_bytes(_png_header(100_000, 100_000))
    paths.append(_write(ann / "bomb.json", _doc("bomb.png", size=(100_000, 100_000))))
    build = build_coco(paths, root=ann, on_invalid="skip", workers=2)
    assert len(build.images) == 3 and [item.file for item in build.skipped] == ["bomb.json"]


# --- item 14: silent acceptance refused ---------------------------------------------------------------

@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--workers", "-3", "error: --workers -3: must be at least 1 (leave it out to use the available cores)"),
    ("--workers", "0", "error: --workers 0: must be at least 1"),
    ("--clip-tolerance", "nan", "error: --clip-tolerance nan: must be a number of pixels >= 0"),
    ("--clip-tolerance", "inf", "error: --clip-tolerance inf: must be a number of pixels >= 0"),
])
def test_labelme2coco_refuses_nonsense_numbers(tmp_path: Path, capsys: pytest.CaptureFixture, flag: str, value: str,
                                               message: str) -> None:
    _good(tmp_path / "ann")
    assert main(["labelme2coco", str(tmp_path / "ann"), str(tmp_path / "out"), f"{flag}={value}"]) == 2
    assert capsys.readouterr().err.startswith(message)
    assert not (tmp_path / "out").exists()


def test_sample_data_refuses_zero_images_and_a_file_as_the_folder(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    assert main(["sample-data", str(tmp_path / "repo"), "--images", "0"]) == 2
    assert capsys.readouterr().err == "error: --images 0: must be at least 1\n"
    assert not (tmp_path / "repo").exists()
    (tmp_path / "file").write_text("mine")
    assert main(["sample-data", str(tmp_path / "file"), "--images", "1"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'file'}: exists and is not a folder; give the path of a new or empty folder\n"
    assert (tmp_path / "file").read_text() == "mine"
    assert main(["sample-data", str(tmp_path / "file" / "repo"), "--images", "1"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'file' / 'repo'}: cannot create the folder")


# --- item 13: a full disk leaves the previous output and one line ------------------------------------

def _previous_output(out: Path) -> None:
    out.mkdir()
    (out / "train.json").write_text("previous")


def test_disk_full_with_overwrite_keeps_the_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    import shutil

    for i in range(3):
        _good(tmp_path / "ann", f"img{i}")
    out = tmp_path / "out"
    _previous_output(out)
    copies = []

    def full_disk(src: object, dst: object, **kwargs: object) -> None:
        copies.append(dst)
        if len(copies) == 2:  # the disk fills up halfway through the images
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        Path(str(dst)).write_bytes(Path(str(src)).read_bytes())

    monkeypatch.setattr(shutil, "copyfile", full_disk)
    assert main(["labelme2coco", str(tmp_path / "ann"), str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out}: writing the dataset failed: No space left on device (")
    assert err.endswith("; the previous dataset there is unchanged; free some space or choose another folder\n")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert [p.name for p in out.iterdir()] == ["train.json"] and (out / "train.json").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ann", "out"]  # no half-written staging folder left


def test_a_real_file_size_limit_fails_cleanly(tmp_path: Path) -> None:
    """The kernel refuses the writes (RLIMIT_FSIZE): the same path as a full disk, without mocks."""
    for i in range(3):
        _good(tmp_path / "ann", f"img{i}")
    out = tmp_path / "out"
    _previous_output(out)

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then write() fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))

    done = subprocess.run([sys.executable, "-m", "workflows.cli", "labelme2coco", str(tmp_path / "ann"), str(out),
                           "--overwrite"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          preexec_fn=limit_file_size)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"error: {out}: writing the dataset failed: File too large; the previous dataset there is "
                           "unchanged; free some space or choose another folder\n")
    assert (out / "train.json").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ann", "out"]
