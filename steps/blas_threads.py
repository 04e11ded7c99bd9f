"""numpy imported without OpenBLAS's thread pool, for commands that multiply no matrices."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Import numpy, if not yet imported, with one OpenBLAS thread: starting a thread per core
    costs its import a third (`trainyard coco-eval` and `labelme2coco` use numpy on small arrays
    only). A user's OPENBLAS_NUM_THREADS wins; the setting is undone at once (OpenBLAS reads it
    when numpy loads), so nothing started later inherits it."""
    if "numpy" not in sys.modules and "OPENBLAS_NUM_THREADS" not in os.environ:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        try:
            import numpy  # noqa: F401
        finally:
            del os.environ["OPENBLAS_NUM_THREADS"]
    yield
