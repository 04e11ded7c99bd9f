"""`trainyard models export`: a registered model (or production) written as TorchScript or ONNX."""

from __future__ import annotations

import tempfile
from pathlib import Path


def export_model(registry_uri: str, model_id: str, fmt: str, output: str | None) -> Path:
    from steps import registry
    from steps.models.export import FORMATS, export

    model = registry.show(registry_uri, model_id)
    target = Path(output) if output else Path(f"{model_id}{FORMATS.get(fmt, '')}")
    with tempfile.TemporaryDirectory(prefix="trainyard-export-") as scratch:
        folder = registry.fetch_model(registry_uri, model_id, Path(scratch) / model_id)
        return export(folder / "model.pth", fmt, target, model.lineage.get("backend") or "torchvision")
