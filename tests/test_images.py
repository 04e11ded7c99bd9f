"""The purpose-built images: every image the templates name has a Dockerfile that builds what it
runs, and the build script builds and pushes them all with one tag.

There is no Docker engine here: the Dockerfiles are checked as text, the entry point and the
build script run for real (the script against a stand-in `docker` that logs its calls).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from workflows.chart import CHART_DIR
from workflows.images import STEP_IMAGES, image_tag
from workflows.pipeline import RUN_AS, WORKFLOW_PARAMETERS, build_pipeline

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"
# Which pyproject extras each image installs (hera, google-re2 and psutil, base dependencies, only serve workflows/).
WORKFLOWS_ONLY = {"hera", "google-re2", "psutil"}
IMAGE_EXTRAS = {"record": ["record"], "train": ["record", "train", "evaluate", "detectron2"]}


def _containers() -> dict[str, dict]:
    return {t["name"]: t["container"] for t in build_pipeline().to_dict()["spec"]["templates"] if "container" in t}


def _image_of(reference: str) -> str:
    match = re.fullmatch(r".+/trainyard-([a-z0-9-]+):(.+)", reference)
    assert match, f"{reference}: not REGISTRY/trainyard-<image>:<tag>"
    assert match.group(2) == image_tag()
    return match.group(1)


def _dockerfile(image: str) -> str:
    return (IMAGES / image / "Dockerfile").read_text()


def _instructions(image: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", _dockerfile(image))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _image_steps(image: str) -> set[str]:
    env = " ".join(args for op, args in _instructions(image) if op == "ENV")
    match = re.search(r'TRAINYARD_STEPS="([^"]+)"', env)
    assert match, f"images/{image}/Dockerfile: no ENV TRAINYARD_STEPS"
    return set(match.group(1).split())


def _requirement_names(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"{path}: {line!r} is not pinned with =="
            pins[_normalise(name)] = version
    return pins


def _normalise(requirement: str) -> str:
    name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_image_the_templates_name_has_a_dockerfile_and_runs_its_step() -> None:
    for step, container in _containers().items():
        image = _image_of(container["image"])
        assert (IMAGES / image / "Dockerfile").is_file(), f"{step}: no images/{image}/Dockerfile"
        assert container["command"] == ["python", "-m", f"steps.{step}"]
        assert (ROOT / "steps" / step / "__main__.py").is_file(), f"{step}: no steps/{step}/__main__.py"
        assert step in _image_steps(image), f"{step} runs in {image}, which does not list it in TRAINYARD_STEPS"
        assert STEP_IMAGES[step] == image


def test_every_dockerfile_is_an_image_the_chart_knows() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    built = {p.parent.name for p in IMAGES.glob("*/Dockerfile")}
    assert built == set(values["images"]) == set(STEP_IMAGES.values())
    assert all(values["images"][name]["repository"] == f"trainyard-{name}" for name in built)


def test_the_steps_an_image_lists_are_the_steps_it_runs() -> None:
    for image in {p.parent.name for p in IMAGES.glob("*/Dockerfile")}:
        assert _image_steps(image) == {step for step, name in STEP_IMAGES.items() if name == image}


@pytest.mark.parametrize("image", sorted(p.parent.name for p in IMAGES.glob("*/Dockerfile")))
def test_dockerfile_shape(image: str) -> None:
    ops = _instructions(image)
    froms = [args for op, args in ops if op == "FROM"]
    assert len(froms) >= 2 and " AS " in froms[0].upper(), "multi-stage: a build stage, then the runtime"
    arg_defaults = dict(re.findall(r"^ARG (\w+)=(\S+)", _dockerfile(image), flags=re.M))
    for base in froms:
        reference = base.split()[0]
        reference = arg_defaults.get(reference.strip("${}"), reference)
        assert "@sha256:" in reference or re.search(r":\d+\.\d+\.\d+", reference), f"{reference}: pin a patch release or a digest"
    # The dependency layer comes before the source, so code changes do not reinstall dependencies.
    steps = [i for i, (op, args) in enumerate(ops) if op == "COPY" and args.startswith("steps ")]
    deps = [i for i, (op, args) in enumerate(ops) if op == "RUN" and "--requirement" in args]
    assert deps and steps and deps[0] < steps[0]
    assert ops[[op for op, _ in ops].index("COPY")][1].startswith(f"images/build-requirements.txt images/{image}/requirements.txt")
    # Non-root with the fixed UID the chart's pod security context expects.
    users = [args for op, args in ops if op == "USER"]
    assert users and users[-1] == f"{RUN_AS}:{RUN_AS}"
    assert f"--uid {RUN_AS}" in _dockerfile(image)
    assert ('ENTRYPOINT', '["trainyard-step"]') in ops
    # The default `config` parameter is a path inside the image: configs/ is copied to the workdir.
    workdir = [args for op, args in ops if op == "WORKDIR"][-1]
    config = WORKFLOW_PARAMETERS["config"][0]
    assert ("COPY", f"configs {workdir}/configs") in ops and (ROOT / config).is_file()


@pytest.mark.parametrize("image", sorted(IMAGE_EXTRAS))
def test_image_requirements_are_pinned_and_cover_pyproject(image: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_normalise(r) for r in project["dependencies"]} - WORKFLOWS_ONLY
    for extra in IMAGE_EXTRAS[image]:
        wanted |= {_normalise(r) for r in project["optional-dependencies"][extra]}
    wanted.discard("trainyard")  # an extra naming another extra (trainyard[train]) is covered by it
    pins = _requirement_names(IMAGES / image / "requirements.in")
    assert sorted(wanted - set(pins)) == []


def test_train_image_builds_torch_and_detectron2_from_a_pinned_commit() -> None:
    text = _dockerfile("train")
    commit = re.search(r"^ARG DETECTRON2_COMMIT=([0-9a-f]+)$", text, flags=re.M)
    assert commit and len(commit.group(1)) == 40
    assert "detectron2.git@${DETECTRON2_COMMIT}" in text and "--no-build-isolation" in text
    pins = _requirement_names(IMAGES / "train" / "requirements.in")
    constraints = _requirement_names(ROOT / "requirements" / "constraints.txt")
    assert {k: pins[k] for k in ("torch", "torchvision")} == {k: constraints[k] for k in ("torch", "torchvision")}


@pytest.mark.parametrize("image", sorted(p.parent.name for p in IMAGES.glob("*/Dockerfile")))
def test_build_context_keeps_what_the_dockerfile_copies(image: str) -> None:
    ignore = (IMAGES / image / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignore, "an allow-list: the repository root holds .venv and runs/"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for op, args in _instructions(image):
        if op == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert source.split("/")[0] in allowed, f"{source} is copied but ignored"
                assert (ROOT / source).exists(), f"{source} is copied but does not exist"


def _entrypoint(*args: str, steps: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRAINYARD_STEPS": steps, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["sh", str(IMAGES / "entrypoint.sh"), *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=60)


def test_entrypoint_runs_the_step_module() -> None:
    done = _entrypoint("notify", "--help", steps="record notify")
    assert done.returncode == 0 and "python -m steps.notify" in done.stdout


def test_entrypoint_refuses_a_step_the_image_does_not_run() -> None:
    done = _entrypoint("train", steps="record notify")
    assert done.returncode == 2 and "record notify" in done.stderr and "'train'" in done.stderr
    assert _entrypoint(steps="record notify").returncode == 2


FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$DOCKER_LOG"
case "$*" in *"$FAIL_ON"*) [ -n "$FAIL_ON" ] && exit 1;; esac
exit 0
"""


def _build(tmp_path: Path, *args: str, fail_on: str = "") -> tuple[subprocess.CompletedProcess[str], list[str]]:
    docker, log = tmp_path / "docker", tmp_path / "docker.log"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    env = {**os.environ, "DOCKER": str(docker), "DOCKER_LOG": str(log), "FAIL_ON": fail_on}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "build-images.sh"), *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    return done, log.read_text().splitlines() if log.exists() else []


def test_build_script_builds_and_pushes_every_image_with_one_tag(tmp_path: Path) -> None:
    done, calls = _build(tmp_path, "--push", "registry.example.com/ml/", "2024.06.1")
    assert done.returncode == 0, done.stderr
    images = sorted(p.parent.name for p in IMAGES.glob("*/Dockerfile"))
    builds = [c for c in calls if c.startswith("build ")]
    revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    source = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Source"]
    assert len(builds) == len(images)
    for image, build in zip(images, builds, strict=True):
        assert f"--file images/{image}/Dockerfile" in build and build.endswith(f"--tag registry.example.com/ml/trainyard-{image}:2024.06.1 .")
        # The OCI labels' build args: the tag, the commit built, the repository of pyproject.toml.
        assert f"--build-arg VERSION=2024.06.1 --build-arg REVISION={revision} --build-arg SOURCE={source} " in build
    assert [c for c in calls if c.startswith("push ")] == [f"push registry.example.com/ml/trainyard-{i}:2024.06.1" for i in images]


def test_build_script_tags_with_the_version_and_stops_before_pushing_on_a_failed_build(tmp_path: Path) -> None:
    done, calls = _build(tmp_path, "--push", "reg.example.com", fail_on="images/train/")
    assert done.returncode != 0
    assert not [c for c in calls if c.startswith("push ")]
    assert f"reg.example.com/trainyard-record:{image_tag()}" in calls[0]


def test_build_script_without_a_registry_prints_usage(tmp_path: Path) -> None:
    done, calls = _build(tmp_path)
    assert done.returncode == 2 and "REGISTRY" in done.stderr and calls == []
