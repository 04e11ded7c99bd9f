"""The whole record step with the DVC remote on gs://, against a real GCS emulator (fake-gcs-server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from steps.datasets import vcs
from steps.datasets.repo import checkout_dataset, commit_annotations, init_dataset_repo
from steps.datasets.sample_data import generate_sample
from tests.gcs_emulator import GcsEmulator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def _blob_names(emulator: GcsEmulator, bucket: str) -> set[str]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(credentials=AnonymousCredentials(), project="test",
                            client_options={"api_endpoint": emulator.url})
    return {blob.name for blob in client.list_blobs(bucket)}


def test_record_round_trip_through_a_gs_remote(gcs_emulator: GcsEmulator, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = gcs_emulator.make_bucket(f"datasets-{uuid.uuid4().hex[:8]}").removeprefix("gs://")
    repo = tmp_path / "dataset-repo"
    # The emulator's address reaches DVC only through the remote's own options, as a real endpoint would.
    init_dataset_repo(repo, f"gs://{bucket}/dvc", {"endpointurl": gcs_emulator.url, "allow_anonymous_login": "true"})
    generate_sample(repo / "annotations", num_images=6, seed=1)
    commit_annotations(repo, "annotations", "annotations/v1")
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    annotations_md5 = yaml.safe_load((repo / "annotations.dvc").read_text())["outs"][0]["md5"]
    assert f"dvc/files/md5/{annotations_md5[:2]}/{annotations_md5[2:]}" in _blob_names(gcs_emulator, bucket)

    # The step as the workflow runs it: a fresh clone pulls the annotations from the bucket.
    version_file = tmp_path / "out" / "version"
    env = {key: value for key, value in os.environ.items() if key != "STORAGE_EMULATOR_HOST"}
    env["TRAINYARD_DATABASE_URL"] = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    done = subprocess.run(
        [sys.executable, "-m", "steps.record", "--repo", str(repo), "--output-version", str(version_file),
         "--set", "dataset.val_fraction=0.34",
         "--set", "dataset.test_fraction=0.17"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert version_file.read_text() == "datasets/v1"
    assert "record: dvc pull annotations/" in done.stdout

    # The tag points at a commit whose dataset.dvc names data that is in the bucket...
    dvc_file = vcs.git(repo, "show", "datasets/v1:dataset.dvc")
    dataset_md5 = yaml.safe_load(dvc_file)["outs"][0]["md5"]
    assert f"dvc/files/md5/{dataset_md5[:2]}/{dataset_md5[2:]}" in _blob_names(gcs_emulator, bucket)
    # ...and a fresh checkout gets it back from there.
    with checkout_dataset(str(repo), "datasets/v1", "dataset") as data:
        splits = {name: json.loads((data / f"{name}.json").read_text()) for name in ("train", "val", "test")}
        assert [len(splits[name]["images"]) for name in ("train", "val", "test")] == [3, 2, 1]
        assert all((data / "images" / image["file_name"]).is_file()
                   for coco in splits.values() for image in coco["images"])
        assert json.loads((data / "report.json").read_text())["skipped"] == []
