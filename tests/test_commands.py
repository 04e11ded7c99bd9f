"""`trainyard coco-eval` and `trainyard models` as users call them."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from steps import registry
from workflows.cli import main


def _trainyard(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _coco_files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(7)
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 150} for i in range(1, 6)]
    categories = [{"id": 1, "name": "plate"}, {"id": 2, "name": "7"}]
    annotations, results = [], []
    for i in range(1, 6):
        for cat in (1, 2):
            x, y, w, h = (float(v) for v in rng.uniform([5, 5, 20, 20], [100, 80, 60, 50]))
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": cat, "bbox": [x, y, w, h],
                                "area": w * h, "iscrowd": 0,
                                "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]]})
            jitter = rng.normal(0, 4, 4)
            results.append({"image_id": i, "category_id": cat, "score": float(rng.uniform(0.3, 1)),
                            "bbox": [x + jitter[0], y + jitter[1], w + jitter[2], h + jitter[3]]})
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    res = tmp_path / "results.json"
    res.write_text(json.dumps(results))
    return gt, res


def test_coco_eval_json_equals_pycocotools(tmp_path: Path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, res = _coco_files(tmp_path)
    code, out, _ = _trainyard("coco-eval", str(gt), str(res), "--json")
    assert code == 0
    ours = json.loads(out)
    with redirect_stdout(io.StringIO()):
        coco = COCO(str(gt))
        reference = COCOeval(coco, coco.loadRes(str(res)), "bbox")
        reference.evaluate()
        reference.accumulate()
        reference.summarize()
    for key, value in zip(["AP", "AP50", "AP75", "APs", "APm", "APl"], reference.stats[:6]):
        expected = None if value < 0 else value
        assert ours[key] == pytest.approx(expected, abs=1e-9) if expected is not None else ours[key] is None
    assert set(ours["per_class"]) == {"plate", "7"}


def test_coco_eval_table_and_errors(tmp_path: Path) -> None:
    gt, res = _coco_files(tmp_path)
    code, out, _ = _trainyard("coco-eval", str(gt), str(res))
    assert code == 0 and "AP50" in out and "plate" in out
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    code, _, err = _trainyard("coco-eval", str(gt), str(broken))
    assert code == 2 and err.startswith(f"error: {broken}: not valid JSON")


def _register(root: Path, name: str, score: float) -> str:
    folder = root / f"model-{name}"
    folder.mkdir()
    (folder / "model.pth").write_bytes(name.encode())
    (folder / "config.yaml").write_text("model: {}\n")
    return registry.register(str(root / "registry"), folder, name, {"segm/AP": score}, {"dataset_version": "datasets/v1"}).model_id


def test_models_list_promote_rollback(tmp_path: Path) -> None:
    reg = str(tmp_path / "registry")
    first, second = _register(tmp_path, "a", 0.1), _register(tmp_path, "b", 0.2)
    assert _trainyard("models", "--registry", reg, "promote", first)[0] == 0
    assert _trainyard("models", "--registry", reg, "promote", second)[0] == 0
    code, out, _ = _trainyard("models", "--registry", reg, "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 and lines[1].startswith(f"* {second}") and lines[0].startswith(f"  {first}")
    code, out, _ = _trainyard("models", "--registry", reg, "show", "production")
    assert json.loads(out)["model_id"] == second
    code, out, _ = _trainyard("models", "--registry", reg, "rollback")
    assert code == 0 and registry.production(reg)["model_id"] == first


def test_models_unknown_id_is_one_line(tmp_path: Path) -> None:
    code, _, err = _trainyard("models", "--registry", str(tmp_path / "registry"), "show", "nope")
    assert code == 2 and err.count("\n") == 1 and "nope" in err
