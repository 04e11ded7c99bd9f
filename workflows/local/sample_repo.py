"""The sample dataset repo a local run records from when no dataset repo is given."""

from __future__ import annotations

from pathlib import Path

SAMPLE_VERSION = "annotations/v1"


def create_sample_repo(repo: Path, images: int = 40, seed: int = 0, version: str = SAMPLE_VERSION,
                       remote: str | None = None) -> Path:
    from steps.dataset_repo import commit_annotations, init_dataset_repo
    from steps.sample_data import generate_sample

    if (repo / "annotations").exists():
        from steps.errors import InputError

        raise InputError(f"{repo}/annotations already exists; choose an empty folder")
    init_dataset_repo(repo, remote)
    files = generate_sample(repo / "annotations", num_images=images, seed=seed)
    commit_annotations(repo, "annotations", version)
    print(f"sample-data: {len(files)} labelme files in {repo}/annotations, committed and tagged {version}")
    return repo
