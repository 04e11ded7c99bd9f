"""`trainyard predict` on new images and `trainyard models export` to TorchScript and ONNX, as a user runs
them against a registry, and the exported files' outputs equal to the model's own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from steps import registry
from steps.config import load_config, save_config
from steps.models.checkpoints import save_checkpoint
from steps.datasets.sample_shapes import CLASSES, generate_shapes
from workflows.cli import main

pytestmark = pytest.mark.integration
CATEGORIES = [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)]


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A registry whose production model is an (untrained) torchvision Mask R-CNN of the shapes' classes."""
    import torch

    from steps.models.torchvision_model import build_model

    root = tmp_path_factory.mktemp("registry")
    config = load_config(None, ["model.backbone=resnet18", "model.pretrained=none", "model.min_size=96",
                                "model.max_size=128", "test.score_threshold=0.05", "test.batch_size=2"])
    torch.manual_seed(0)
    model = build_model(config.model, len(CATEGORIES) + 1, download=False)
    folder = root / "model"
    save_checkpoint({"backend": "torchvision", "iteration": 1, "model": model.state_dict(),
                     "config": config.model_dump(mode="json"), "categories": CATEGORIES}, folder / "model.pth")
    save_config(config, folder / "config.yaml")
    uri = str(root / "registry")
    model_id = registry.register(uri, folder, "model_0000001.pth", {"segm/AP": 0.1},
                                 {"dataset_version": "datasets/v1", "backend": "torchvision", "select_key": "segm/AP"}).model_id
    registry.promote(uri, model_id, "test")
    return uri, model_id


def test_predict_draws_new_images_and_writes_coco_results(production: tuple[str, str], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    uri, model_id = production
    generate_shapes(tmp_path / "new", num_images=3, seed=9)
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "new"), "--registry", uri, "--output", str(out)]) == 0
    assert f"predicted 3 image(s) with {model_id}" in capsys.readouterr().out
    images = json.loads((out / "images.json").read_text())
    assert [Path(i["file_name"]).name for i in images["images"]] == [f"shapes_000{i}.jpg" for i in range(3)]
    results = json.loads((out / "predictions.json").read_text())
    assert results and {r["image_id"] for r in results} <= {1, 2, 3}
    assert all({"bbox", "score", "category_id", "segmentation"} <= set(r) and r["score"] >= 0.05 for r in results)
    assert len(list((out / "images").glob("*.jpg"))) == 3
    page = (out / "index.html").read_text()
    assert "Without ground truth (3)" in page and model_id in page  # new images: nothing to judge them by
    # a model that is not registered: one line
    assert main(["predict", str(tmp_path / "new"), "--registry", uri, "--model", "nope"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {uri}: no model 'nope'")


def _matched(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    """Every exported detection is one of the model's: same box, score, label and mask. The order
    of equal-scoring detections may differ between runtimes, so they are matched by box."""
    assert len(ours["boxes"]) == len(theirs["boxes"]) > 0
    distance = np.abs(ours["boxes"][:, None, :] - theirs["boxes"][None, :, :]).max(axis=2)
    pairs = distance.argmin(axis=1)
    assert distance.min(axis=1).max() < 1e-2 and len(set(pairs)) == len(pairs)
    np.testing.assert_allclose(ours["scores"], theirs["scores"][pairs], atol=1e-4)
    np.testing.assert_array_equal(ours["labels"], theirs["labels"][pairs])
    assert np.mean((ours["masks"] > 0.5) != (theirs["masks"][pairs] > 0.5)) < 1e-3


def test_exported_torchscript_and_onnx_give_the_models_outputs(production: tuple[str, str], tmp_path: Path) -> None:
    import onnxruntime
    import torch

    from steps.models.torchvision_predictor import load_predictor

    uri, model_id = production
    folder = registry.fetch_model(uri, model_id, tmp_path / "fetched")
    model = load_predictor(folder / "model.pth", device="cpu").model.eval()
    image = torch.rand(3, 90, 120, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = {k: v.numpy() for k, v in model([image])[0].items()}

    script = tmp_path / "model.pt"
    assert main(["models", "export", "production", "--format", "torchscript", "--registry", uri, "--output", str(script)]) == 0
    extra = {"categories.json": ""}
    loaded = torch.jit.load(str(script), _extra_files=extra)
    assert json.loads(extra["categories.json"]) == CATEGORIES
    with torch.no_grad():
        _, detections = loaded([image])
    _matched({k: v.numpy() for k, v in detections[0].items()}, expected)

    onnx_file = tmp_path / "model.onnx"
    assert main(["models", "export", model_id, "--format", "onnx", "--registry", uri, "--output", str(onnx_file)]) == 0
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    boxes, labels, scores, masks = session.run(None, {"image": image.numpy()})
    _matched({"boxes": boxes, "labels": labels, "scores": scores, "masks": masks}, expected)
    assert json.loads(session.get_modelmeta().custom_metadata_map["categories"]) == CATEGORIES
    # on an image of another size too (the graph's height and width are dynamic)
    other = torch.rand(3, 120, 100, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = {k: v.numpy() for k, v in model([other])[0].items()}
    boxes, labels, scores, masks = session.run(None, {"image": other.numpy()})
    _matched({"boxes": boxes, "labels": labels, "scores": scores, "masks": masks}, expected)
