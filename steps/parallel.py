"""Run a function over many inputs on the machine's cores, results in input order."""

from __future__ import annotations

import contextlib
import gc
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # imported where a pool starts: multiprocessing costs a command's start-up ~30 ms
    from concurrent.futures import ProcessPoolExecutor

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
    """Cores this process may use: its CPU affinity, capped by the container's CPU limit; 1 in a
    worker of these maps (its cores are taken by its siblings).

    os.cpu_count() counts the node's cores: in a pod limited to 2 CPUs on a 64-core node,
    64 workers would only be throttled.
    """
    if _in_worker:
        return 1
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
    if workers == 1 or _threads:
        return [call(item) for item in items]
    chunksize = max(1, math.ceil(len(items) / (workers * 8)))
    with _pool(workers) as pool:
        return list(pool.map(call, items, chunksize=chunksize))


_shared: Any = None  # what parallel_map_shared's workers read: inherited at fork
_in_worker = False  # set in every worker process: a worker's own maps run in it, not in more processes
_threads: str | None = None  # a library's thread pool started here (see threads_started)


def threads_started(what: str) -> None:
    """Say that a library has started threads of its own in this process (`what`, for readers).

    Their threads would be missing from a forked copy, and a call into the library there would
    wait for them forever (hotcoco's pool), so the maps below then run in this process.
    """
    global _threads
    _threads = what


def _mark_worker() -> None:
    global _in_worker
    _in_worker = True


def _call_shared(function: Callable[[Any, T], R], item: T) -> R:
    return function(_shared, item)


def parallel_map_shared(function: Callable[[Any, T], R], shared: Any, items: Sequence[T], workers: int | None = None,
                        *, threads_unused: bool = False) -> list[R]:
    """`[function(shared, item) for item in items]`, spread over forked worker processes.

    `shared` (a whole result file, a closure) reaches the workers with the process's memory:
    nothing is pickled but the items and the results. Where processes cannot be forked (not
    Linux) it all runs here. `workers=None` uses the available cores. `threads_unused`: the
    function never calls a library whose threads started here (see threads_started), so the
    workers may be forked after them.
    """
    workers = max(1, min(available_cpus() if workers is None else workers, len(items)))
    context = _context()
    if workers == 1 or context.get_start_method() != "fork" or (_threads and not threads_unused):
        return [function(shared, item) for item in items]
    global _shared
    _shared = shared
    try:
        with _pool(workers, context) as pool:
            chunksize = max(1, math.ceil(len(items) / (workers * 4)))
            return list(pool.map(partial(_call_shared, function), items, chunksize=chunksize))
    finally:
        _shared = None


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (forked workers inherit the pause).

    For work that makes hundreds of thousands of short-lived objects and no cycles in a process
    that holds hundreds of thousands more (a result file): each collection would walk them all.
    Scoring 5,000 images' masks took a fifth longer with collections on (scripts/bench.py).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _pool(workers: int, context: Any = None) -> ProcessPoolExecutor:
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=context or _context(), initializer=_mark_worker)


def _context() -> Any:
    # fork (Linux): workers start at once with this process's imports, and the main module is not
    # re-run (spawn and forkserver re-import it: slow for a CLI, fatal for an unguarded script).
    # The workers run numpy and C extensions, never torch, so a model loaded in this process
    # (its OpenMP threads do not survive the fork) is not touched in them.
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods and sys.platform == "linux" else None)
