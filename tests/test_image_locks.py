"""The images' dependency locks: every package each image installs is pinned with its hashes, for
the one Python and platform of the images, consistent with pyproject.toml, and resolvable.

scripts/lock-images.sh (`make lock`) writes images/<image>/requirements.txt from the top-level
pins in requirements.in, and images/build-requirements.txt (the build backend) likewise; the
Dockerfiles install them with `pip install --require-hashes --no-deps`. The integration test
resolves each lock again with uv, which reads only the index's metadata: `pip install --dry-run
--require-hashes` would download every wheel to hash it (pip's preparer skips metadata-only
fetching when hashes are required), gigabytes for torch and its CUDA libraries.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.test_images import IMAGE_EXTRAS, WORKFLOWS_ONLY

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"
BUILD_LOCK = IMAGES / "build-requirements.txt"
LOCKS = {p.parent.name: p for p in sorted(IMAGES.glob("*/requirements.txt"))}
ALL_LOCKS = {"build": BUILD_LOCK, **LOCKS}
# The python3 of the Ubuntu releases the CUDA bases are built on (Ubuntu's python3 package).
UBUNTU_PYTHON = {"ubuntu24.04": "3.12", "ubuntu22.04": "3.10"}


@dataclass(frozen=True)
class Locked:
    version: str
    hashes: frozenset[str]


def read_lock(path: Path) -> dict[str, Locked]:
    """name -> Locked of a `--generate-hashes` requirements file; fails on anything unpinned or unhashed."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    locked = {}
    for line in text.splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        spec, *options = line.split(" --")
        name, sep, version = spec.strip().partition("==")
        assert sep and re.fullmatch(r"[\w.+!-]+", version), f"{path.name}: {spec!r} is not pinned with =="
        hashes = frozenset(o.removeprefix("hash=") for o in options if o.startswith("hash=sha256:"))
        assert hashes, f"{path.name}: {name}=={version} has no sha256 hash (run `make lock`)"
        locked[canonicalize_name(name)] = Locked(version, hashes)
    return locked


def lock_target(path: Path) -> dict[str, str]:
    """The resolver options the lock was made with, from the command in its header."""
    command = path.read_text().splitlines()[1]
    return dict(re.findall(r"--(python-version|python-platform) (\S+)", command))


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            [specifier] = requirement.specifier
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def _dockerfile_python(image: str) -> str:
    """The Python minor version an image runs, from the base image its Dockerfile names."""
    text = (IMAGES / image / "Dockerfile").read_text()
    bases = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)", text, flags=re.M))
    if "PYTHON_IMAGE" in bases:
        match = re.fullmatch(r"python:(\d+\.\d+)\.\d+-.+", bases["PYTHON_IMAGE"])
        assert match, bases["PYTHON_IMAGE"]
        return match.group(1)
    [ubuntu] = {re.search(r"-(ubuntu\d+\.\d+)(?:@|$)", b).group(1) for b in bases.values()}
    assert "apt-get install" in text and " python3 " in text, f"{image}: python3 is not Ubuntu's"
    return UBUNTU_PYTHON[ubuntu]


# -- the locks as text: pinned, hashed, one target --------------------------------------------------
@pytest.mark.parametrize("image", sorted(ALL_LOCKS))
def test_every_locked_package_is_pinned_and_hashed(image: str) -> None:
    assert read_lock(ALL_LOCKS[image])


def test_a_lock_without_hashes_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text("# header\n#  uv pip compile\nsix==1.17.0\n    # via x\n")
    with pytest.raises(AssertionError, match="six==1.17.0 has no sha256 hash"):
        read_lock(lock)
    lock.write_text("# header\n#  uv pip compile\nsix>=1 \\\n    --hash=sha256:ab\n")
    with pytest.raises(AssertionError, match="not pinned"):
        read_lock(lock)


def test_every_image_runs_the_one_python_its_lock_is_resolved_for() -> None:
    targets = {name: lock_target(path) for name, path in ALL_LOCKS.items()}
    assert len({tuple(sorted(t.items())) for t in targets.values()}) == 1, targets
    version = targets["build"]["python-version"]
    assert targets["build"]["python-platform"].startswith("x86_64-manylinux_")
    assert {image: _dockerfile_python(image) for image in LOCKS} == {image: version for image in LOCKS}


@pytest.mark.parametrize("image", sorted(LOCKS))
def test_the_lock_holds_the_top_level_pins_and_fits_pyproject(image: str) -> None:
    locked = read_lock(LOCKS[image])
    pins = _pins(IMAGES / image / "requirements.in")
    assert {name: locked[name].version for name in pins if name in locked} == pins
    # Every range pyproject.toml gives for what the image installs admits the locked version.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in IMAGE_EXTRAS[image]:
        requirements += [Requirement(r) for r in project["optional-dependencies"][extra]]
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name in WORKFLOWS_ONLY | {"trainyard"}:
            continue
        assert name in locked, f"{image}: {name} is not locked"
        assert requirement.specifier.contains(locked[name].version, prereleases=True), (
            f"images/{image}/requirements.txt: {name}=={locked[name].version} is outside pyproject's {requirement}")


def test_the_build_backend_is_locked_once_for_every_image() -> None:
    build = read_lock(BUILD_LOCK)
    backend = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    for requirement in map(Requirement, backend):
        assert requirement.specifier.contains(build[canonicalize_name(requirement.name)].version)
    for image, path in LOCKS.items():  # the image lock must not pull it back to another version
        locked = read_lock(path)
        assert all(locked[name] == build[name] for name in build if name in locked), image


def test_the_train_lock_names_the_cuda_build_the_image_compiles_against() -> None:
    """PyPI's torch wheels for Linux are CUDA builds whose CUDA libraries are separate wheels: the
    lock names them (cuda-toolkit, nvidia-cuda-runtime), and nvcc of the devel base, which compiles
    detectron2's extension against that torch, must be the same CUDA release."""
    locked = read_lock(LOCKS["train"])
    text = (IMAGES / "train" / "Dockerfile").read_text()
    bases = dict(re.findall(r"^ARG (CUDA_\w+_IMAGE)=nvidia/cuda:(\d+\.\d+)\.\d+-", text, flags=re.M))
    assert set(bases) == {"CUDA_DEVEL_IMAGE", "CUDA_BASE_IMAGE"} and len(set(bases.values())) == 1, bases
    cuda = bases["CUDA_DEVEL_IMAGE"]
    for name in ("cuda-toolkit", "nvidia-cuda-runtime"):
        assert name in locked, f"torch=={locked['torch'].version} no longer names {name}: check its CUDA build"
        assert ".".join(locked[name].version.split(".")[:2]) == cuda, f"{name}=={locked[name].version} vs CUDA {cuda}"
    assert not [name for name in locked if name.endswith("-cu12")], "CUDA 12 libraries next to a CUDA 13 torch"


@pytest.mark.parametrize("image", sorted(LOCKS))
def test_the_dockerfile_installs_only_the_hashed_locks(image: str) -> None:
    text = re.sub(r"\\\n\s*", " ", (IMAGES / image / "Dockerfile").read_text())
    installs = re.findall(r"pip install ([^&\n]+)", text)
    assert installs
    for install in installs:
        assert "--no-deps" in install, f"{image}: pip resolves at build time: {install}"
        if "--requirement" in install:
            assert "--require-hashes" in install and "/tmp/locks/" in install, install
        else:  # trainyard itself, or detectron2 at a pinned commit: built by the locked setuptools
            assert "--no-build-isolation" in install and re.search(r"/src$|@\$\{DETECTRON2_COMMIT\}", install.strip(' "')), install
    locks = re.search(r"^COPY (.+) /tmp/locks/$", text, flags=re.M)
    assert locks and locks.group(1).split() == ["images/build-requirements.txt", f"images/{image}/requirements.txt"]


@pytest.mark.parametrize("image", sorted(LOCKS))
def test_the_image_is_labelled_with_its_source_version_and_revision(image: str) -> None:
    text = re.sub(r"\\\n\s*", " ", (IMAGES / image / "Dockerfile").read_text())
    runtime = text.rsplit("\nFROM ", 1)[1]  # labels and their build args belong to the final stage
    for label, arg in (("source", "SOURCE"), ("version", "VERSION"), ("revision", "REVISION")):
        assert f"ARG {arg}=" in runtime and f'org.opencontainers.image.{label}="${{{arg}}}"' in runtime, label


# -- the locks resolve for the images' Python and platform ---------------------------------------
def _uv() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("uv is not installed (pyproject's dev extra: pip install uv)")
        pytest.skip("uv is not installed (pyproject's dev extra)")
    return find_uv_bin()


def _index_reachable() -> None:
    index = os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") or "https://pypi.org/simple/"
    try:
        urllib.request.urlopen(urllib.request.Request(f"{index.rstrip('/')}/pip/", method="HEAD"), timeout=10).close()
    except OSError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the package index {index} cannot be reached: {exc}")
        pytest.skip(f"the package index {index} cannot be reached ({exc}); CI reaches it and runs this test")


@pytest.mark.integration
@pytest.mark.timeout(120)
@pytest.mark.parametrize("image", sorted(ALL_LOCKS))
def test_the_lock_resolves_for_the_images_python_and_platform(image: str, tmp_path: Path) -> None:
    """Resolve the image's top-level pins with its lock as constraints, for the lock's Python and
    platform: the result must be exactly the locked set (nothing missing, nothing extra, every pin
    satisfiable there), and every locked hash a file the index still serves for that version."""
    uv, lock = _uv(), ALL_LOCKS[image]
    _index_reachable()
    target = lock_target(lock)
    requirements = lock.with_suffix(".in")
    done = subprocess.run(
        [uv, "pip", "compile", "--quiet", "--generate-hashes", "--no-header", "--no-annotate",
         "--python-version", target["python-version"], "--python-platform", target["python-platform"],
         "--constraint", str(lock), str(requirements), "--output-file", str(tmp_path / "resolved.txt")],
        capture_output=True, text=True, timeout=110, cwd=ROOT,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1"},
    )
    assert done.returncode == 0, f"{lock.relative_to(ROOT)} does not resolve:\n{done.stderr[-2000:]}"
    locked, resolved = read_lock(lock), read_lock(tmp_path / "resolved.txt")
    assert {n: v.version for n, v in resolved.items()} == {n: v.version for n, v in locked.items()}
    stale = {name: sorted(entry.hashes - resolved[name].hashes) for name, entry in locked.items()
             if not entry.hashes <= resolved[name].hashes}
    assert stale == {}, f"{lock.relative_to(ROOT)}: hashes the index no longer serves (run `make lock`)"
