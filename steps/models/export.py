"""A registered model as a file a serving stack loads: TorchScript or ONNX (torchvision models).

Both take one image as a float tensor of shape [3, H, W] with values in [0, 1] (RGB), any size,
and give every detection above the model's score threshold: boxes [N, 4] (x0, y0, x1, y1 in
pixels), labels [N] (1 + the index into the model's categories, which the file carries:
TorchScript's extra file `categories.json`, ONNX's metadata property `categories`), scores [N]
and masks [N, 1, H, W] (probabilities: COCO's convention binarises at 0.5). The scripted model
is torchvision's own: called with a list of images it returns (losses, detections) in eval mode.
The ONNX graph comes from torch's TorchScript-based exporter (`dynamo=False`, opset 17), which
is the one torchvision's detection models are tested with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from steps.errors import InputError

FORMATS = {"torchscript": ".pt", "onnx": ".onnx"}
OPSET = 17


def export(checkpoint: Path, fmt: str, output: Path, backend: str = "torchvision") -> Path:
    """Write `checkpoint` (a model.pth) as `fmt` to `output`; return it."""
    if backend != "torchvision":
        raise InputError(f"export: a {backend} model cannot be exported yet; only torchvision models are "
                         "(detectron2 has its own tools/deploy/export_model.py)")
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    import torch

    from steps.models.torchvision_predictor import load_predictor

    predictor = load_predictor(checkpoint, device="cpu")
    model, categories = predictor.model.eval(), json.dumps(predictor.categories)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    try:
        if fmt == "torchscript":
            torch.jit.script(model).save(str(partial), _extra_files={"categories.json": categories})
        else:
            _onnx(model, partial, categories)
        partial.replace(output)  # whole or not at all
    finally:
        partial.unlink(missing_ok=True)
    return output


def _onnx(model: Any, path: Path, categories: str) -> None:
    import torch

    try:
        import onnx
    except ImportError:
        raise InputError("export --format onnx needs the onnx package: pip install 'trainyard[export]'") from None
    import warnings

    example = torch.rand(3, 96, 128)
    with warnings.catch_warnings():
        # The tracer warns about every data-dependent shape of the detection heads (dozens of lines);
        # the dynamic axes below are what makes them hold, and the test compares outputs on two sizes.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, ([example],), str(path), dynamo=False, opset_version=OPSET, input_names=["image"],
                          output_names=["boxes", "labels", "scores", "masks"],
                          dynamic_axes={"image": [1, 2], "boxes": [0], "labels": [0], "scores": [0], "masks": [0, 2, 3]})
    graph = onnx.load(str(path))
    graph.metadata_props.add(key="categories", value=categories)
    onnx.save(graph, str(path))
