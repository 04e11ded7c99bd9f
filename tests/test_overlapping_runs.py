"""Local runs that overlap, and what an interrupted one leaves: the sample repo appears whole or not
at all, a half-made one is made again, and every run has an id and a folder of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from steps.datasets import vcs
from workflows.local.run import new_run_dir
from workflows.local.sample_repo import SAMPLE_VERSION, ensure_sample_repo, is_complete

ROOT = Path(__file__).resolve().parents[1]


def test_runs_started_in_the_same_second_get_ids_and_folders_of_their_own(tmp_path: Path) -> None:
    made: list[Path] = []
    threads = [threading.Thread(target=lambda: made.append(new_run_dir(tmp_path / "runs"))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({p.name for p in made}) == 16 and all(p.is_dir() for p in made)
    assert all(p.name.startswith("local-") for p in made)


@pytest.mark.integration
def test_a_half_made_sample_repo_is_set_aside_and_made_again(tmp_path: Path) -> None:
    # What an interrupted in-place creation left: a git repo without the annotation tag.
    sample = tmp_path / "runs" / "sample-dataset"
    sample.mkdir(parents=True)
    vcs.git(sample, "init", "--quiet")
    (sample / "annotations").mkdir()
    assert not is_complete(sample)

    assert ensure_sample_repo(sample, images=2) == sample
    assert is_complete(sample) and SAMPLE_VERSION in vcs.remote_tags(str(sample), "annotations/*")
    aside = [p.name for p in sample.parent.iterdir() if p.name.startswith("sample-dataset.incomplete-")]
    assert len(aside) == 1
    assert not [p for p in sample.parent.iterdir() if ".making-" in p.name]
    # A complete one is used as it is.
    head = vcs.git(sample, "rev-parse", "HEAD")
    assert ensure_sample_repo(sample, images=2) == sample and vcs.git(sample, "rev-parse", "HEAD") == head


# The file size limit (RLIMIT_FSIZE) makes the kernel refuse writes as a full disk does; set when
# the images are written, or from the start (then git or DVC is the first to fail).
_LIMITED = """
import resource, signal, sys
import steps.datasets.sample_data
from workflows.cli import main

def limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

if sys.argv[1] == "images":
    generate = steps.datasets.sample_data.generate_sample
    steps.datasets.sample_data.generate_sample = lambda *args, **kwargs: (limit(), generate(*args, **kwargs))[1]
else:
    limit()
sys.exit(main(["sample-data", sys.argv[2], "--images", "3"]))
"""


@pytest.mark.integration
@pytest.mark.parametrize("when", ["images", "start"])
def test_a_full_disk_while_making_the_sample_data_is_one_line_and_leaves_nothing(when: str, tmp_path: Path) -> None:
    repo = tmp_path / "sample"
    done = subprocess.run([sys.executable, "-c", _LIMITED, when, str(repo)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: {repo}: making the sample dataset failed")
    if when == "images":
        assert done.stderr.endswith("(File too large); nothing was kept; free some space or choose another folder\n")
    assert list(tmp_path.iterdir()) == [], "neither the repo nor its half-made copy is left"


@pytest.mark.integration
def test_two_local_runs_at_once_in_a_new_output_folder_both_use_a_whole_sample_repo(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    # An annotation version the sample lacks: record fails at once, after the sample repo is made,
    # and names the tags it found: both runs must find annotations/v1.
    command = [sys.executable, "-m", "workflows.cli", "run", "--local", "--output", str(runs),
               "-p", "annotation-version=annotations/v9"]
    env = {**os.environ, "TRAINYARD_VCS_TIMEOUT": "120"}
    env.pop("TRAINYARD_DATABASE_URL", None)
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    for output in outputs:
        assert "version 'annotations/v9' not found (tags: annotations/v1)" in output, output
    run_ids = {line.split()[1].rstrip(":") for output in outputs for line in output.splitlines() if line.startswith("Run local-")}
    assert len(run_ids) == 2, outputs
    assert is_complete(runs / "sample-dataset")
    assert not [p for p in runs.iterdir() if ".making-" in p.name]
