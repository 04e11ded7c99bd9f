"""Run a function over many inputs on the machine's cores, results in input order."""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Below this many items per worker, starting worker processes costs more than it saves.
MIN_ITEMS_PER_WORKER = 64


def _cgroup_cpus() -> float | None:
    """The container's CPU limit (a Kubernetes `limits.cpu`), from cgroup v2 or v1; None: no limit."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """Cores this process may use: its CPU affinity, capped by the container's CPU limit.

    os.cpu_count() counts the node's cores: in a pod limited to 2 CPUs on a 64-core node,
    64 workers would only be throttled.
    """
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = _cgroup_cpus()
    if limit is not None:
        count = min(count, max(1, math.floor(limit)))
    return max(1, count)


def parallel_map(function: Callable[..., R], items: Sequence[T], workers: int | None = None, **kwargs: Any) -> list[R]:
    """`[function(item, **kwargs) for item in items]`, spread over worker processes.

    `workers=None` uses the available cores, but never more than one per MIN_ITEMS_PER_WORKER
    items; `workers=1` runs in this process.
    """
    call = partial(function, **kwargs) if kwargs else function
    if workers is None:
        workers = min(available_cpus(), len(items) // MIN_ITEMS_PER_WORKER)
    workers = max(1, min(workers, len(items)))
    if workers == 1:
        return [call(item) for item in items]
    # fork (Linux): workers start at once with this process's imports, and the main module is not
    # re-run (spawn and forkserver re-import it: slow for a CLI, fatal for an unguarded script).
    # The callers are single-threaded, which is what makes fork safe here.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods and sys.platform == "linux" else None)
    chunksize = max(1, math.ceil(len(items) / (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(call, items, chunksize=chunksize))
