"""The purpose-built step images the templates run.

Rendered manifests name `REGISTRY/trainyard-<image>:TAG`; the Helm chart overrides both per
image. Each image has `images/<image>/Dockerfile`.
"""

from __future__ import annotations

from steps import __version__

REGISTRY = "ghcr.io/trainyard"
# Which image runs which step: record is light (git, DVC, DB driver) and also runs the exit
# handler (notify); train, evaluate, select and test need torch + CUDA.
STEP_IMAGES = {"record": "record", "train": "train", "evaluate": "train", "select": "train", "test": "train", "notify": "record"}


def image_tag() -> str:
    """Images are tagged with the trainyard version they were built from."""
    return __version__


def image_for(image: str) -> str:
    return f"{REGISTRY}/trainyard-{image}:{image_tag()}"


def step_image(step: str) -> str:
    return image_for(STEP_IMAGES[step])
