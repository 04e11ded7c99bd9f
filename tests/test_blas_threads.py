"""steps.blas_threads: numpy without OpenBLAS's thread pool, the setting undone, a user's kept."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = ("import os, sys; from steps.blas_threads import one_blas_thread\n"
         "with one_blas_thread(): pass\n"
         "imported = 'numpy' in sys.modules; import numpy\n"
         "print(len(os.listdir('/proc/self/task')), os.environ.get('OPENBLAS_NUM_THREADS'), imported)")


def _probe(env: dict[str, str]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_numpy_starts_no_blas_threads_and_the_setting_is_undone() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    threads, setting, imported = _probe(env)
    assert (threads, setting, imported) == ("1", "None", "True")
    if (os.cpu_count() or 1) > 1:  # a user's setting wins: one thread per core, as without the helper
        threads, setting, _ = _probe({**env, "OPENBLAS_NUM_THREADS": str(os.cpu_count())})
        assert int(threads) > 1 and setting == str(os.cpu_count())
