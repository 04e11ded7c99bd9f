"""Fixtures shared across the test tiers: real services and a small sample dataset repo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.gcs_emulator import gcs_emulator  # noqa: F401  (fixture)
from tests.postgres_server import fresh_postgres, postgres_url  # noqa: F401  (fixtures)

SAMPLE_IMAGES = 12


@pytest.fixture(scope="session")
def _sample_repo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from workflows.local.sample_repo import create_sample_repo

    return create_sample_repo(tmp_path_factory.mktemp("sample") / "dataset", images=SAMPLE_IMAGES, seed=3)


@pytest.fixture
def sample_repo(_sample_repo_template: Path, tmp_path: Path) -> Path:
    """A dataset repo of its own per test (record pushes tags into it); the DVC remote is shared."""
    repo = tmp_path / "dataset"
    shutil.copytree(_sample_repo_template, repo, symlinks=True)
    return repo


@pytest.fixture(scope="session")
def _shapes_repo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from workflows.local.sample_repo import create_sample_repo

    return create_sample_repo(tmp_path_factory.mktemp("shapes") / "dataset", images=SAMPLE_IMAGES, seed=5, kind="shapes")


@pytest.fixture
def shapes_repo(_shapes_repo_template: Path, tmp_path: Path) -> Path:
    """A dataset repo without plates: 12 classes of coloured shapes, rectangles and polygons."""
    repo = tmp_path / "shapes"
    shutil.copytree(_shapes_repo_template, repo, symlinks=True)
    return repo
