"""Reading `.pkl` weight files (detectron2's model zoo, Detectron1/Caffe2 exports) without running code.

A pickle may name any importable callable and call it while loading (`os.system`, ...), so a `.pkl`
in `model.pretrained` (a file or a URL) would run whatever its author chose. Weight pickles need
only containers, numpy arrays and dtypes: this unpickler resolves those and refuses everything else.
"""

from __future__ import annotations

import pickle
from typing import IO, Any

# (module, name) pairs a weights pickle may reference: numpy's array/scalar reconstruction (old and
# new module paths), bytes as protocol 2 writes them, and ordered dicts.
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),  # arrays in pickle protocol 5
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references something that is not plain data."""


class _WeightsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f"it references {module}.{name}, which is not plain weight data; refusing to unpickle it"
                " (a .pkl can run code: use a file from a source you trust, converted to .pth)"
            )
        return super().find_class(module, name)


def load(file: IO[bytes]) -> Any:
    """Like `pickle.load(file, encoding="latin1")` (Python 2 era zoo files), for plain data only."""
    return _WeightsUnpickler(file, encoding="latin1").load()
