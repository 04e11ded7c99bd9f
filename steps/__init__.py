"""Code that runs inside trainyard's step images: one package per pipeline step plus shared pieces.

Nothing here imports `workflows` (the orchestration side).
"""

__version__ = "0.1.0"
