"""The evaluate step's decisions: classes by name, a promotion the bootstrap refuses, NaN scores,
an early select_key check, the first-model floor, and registry/database agreement under faults.

The models here are small stand-ins that predict (part of) the ground truth by category name:
what is under test is the step's bookkeeping and decision, not a network's weights (the real
backends are in test_evaluate_backends.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from steps import registry
from steps.config import Config, load_config
from steps.db import Database
from steps.errors import ConfigError, InputError
from steps.evaluate import evaluate as evaluate_module
from steps.evaluate.evaluate import evaluate, select_best
from steps.evaluate.scoring import category_map, predict_split, score
from steps.evaluate.store import RECONCILED
from steps.masks import encode, polygons_to_mask
from steps.models.checkpoints import read_checkpoint, save_checkpoint

H, W = 60, 80


def square(x: int, y: int, size: int = 12) -> list[float]:
    return [float(v) for v in (x, y, x + size, y, x + size, y + size, x, y + size)]


def dataset(root: Path, labels: list[str], images: int = 10) -> Path:
    """val.json with one object of every label per image; category ids are positions in `labels`."""
    anns, entries = [], []
    for i in range(1, images + 1):
        entries.append({"id": i, "file_name": f"{i}.png", "height": H, "width": W})
        for k, _ in enumerate(labels):
            poly = square(2 + 15 * k, 2 + 3 * (i % 5))
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": k + 1, "segmentation": [poly],
                         "bbox": [poly[0], poly[1], 12.0, 12.0], "area": 144.0, "iscrowd": 0})
    gt = {"images": entries, "annotations": anns, "categories": [{"id": k + 1, "name": n} for k, n in enumerate(labels)]}
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    (root / "val.json").write_text(json.dumps(gt))
    return root


def write_model(path: Path, labels: list[str], misses: list[int] = (), backend: str = "stand-in") -> Path:
    """A stand-in checkpoint: its categories (ids = positions in `labels`), and the images
    (by file name number) whose objects it misses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A real checkpoint file (evaluate registers its weights), with no weights in it.
    return save_checkpoint({"model": {}, "labels": labels, "misses": list(misses), "backend": backend}, path)


class StandIn:
    """Predicts the ground truth of the val split for the labels it knows, in its own category ids."""

    def __init__(self, path: Path, gt: dict) -> None:
        state = read_checkpoint(Path(path))
        self.categories = [{"id": k + 1, "name": n} for k, n in enumerate(state["labels"])]
        self.misses = set(state["misses"])
        self.gt = gt

    def predict(self, image_path: Path, image_id: int, score_threshold: float) -> list[dict[str, Any]]:
        if int(Path(image_path).stem) in self.misses:
            return []
        names = {c["id"]: c["name"] for c in self.gt["categories"]}
        ours = {c["name"]: c["id"] for c in self.categories}
        out = []
        for ann in self.gt["annotations"]:
            name = names[ann["category_id"]]
            if ann["image_id"] == image_id and name in ours:
                mask = polygons_to_mask(ann["segmentation"], H, W)
                out.append({"image_id": image_id, "category_id": ours[name], "bbox": ann["bbox"], "score": 0.9,
                            "segmentation": encode(mask)})
        return out


class StandInBackend:
    loads: list[Path] = []

    def __init__(self, name: str, gt_file: Path) -> None:
        self.name, self.gt_file = name, gt_file

    def load(self, checkpoint: Path, device: str = "auto") -> StandIn:
        StandInBackend.loads.append(Path(checkpoint))
        return StandIn(checkpoint, json.loads(self.gt_file.read_text()))


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TRAINYARD_DATABASE_URL", raising=False)
    data = tmp_path / "data"
    backends: list[str] = []

    def get_backend(name: str) -> StandInBackend:
        backends.append(name)
        return StandInBackend(name, data / "val.json")

    monkeypatch.setattr(evaluate_module, "get_backend", get_backend)
    StandInBackend.loads = []

    def config(*overrides: str) -> Config:
        loaded = load_config(None, [f"promotion.registry={tmp_path / 'registry'}", "evaluate.select_key=segm/AP50",
                                    "promotion.min_images=1", "promotion.min_objects=1", *overrides])
        loaded.database.url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
        return loaded

    return tmp_path, data, config, backends


def run(tmp_path: Path, data: Path, config: Config, name: str, checkpoints: dict[str, tuple[list[str], list[int]]]):
    folder = tmp_path / name / "checkpoints"
    for file, (labels, misses) in checkpoints.items():
        write_model(folder / file, labels, misses)
    return evaluate(config, data, folder, tmp_path / name / "evaluation", name, "datasets/v1")


def promotions(tmp_path: Path) -> list[tuple]:
    with Database(f"sqlite:///{tmp_path / 'meta.sqlite'}").transaction() as tx:
        return tx.query("SELECT model_id, promoted, gain, confidence, reason FROM promotions ORDER BY id")


def test_the_champion_is_scored_by_class_name_after_a_label_is_added(setup) -> None:
    tmp_path, data, config, _ = setup
    dataset(data, ["a", "plate"])
    first = run(tmp_path, data, config(), "r1", {"model_0000001.pth": (["a", "plate"], [])})
    assert first.promoted
    # Version 2 adds label "0": sorted first, it shifts every id ("a" 1 -> 2, "plate" 2 -> 3).
    dataset(data, ["0", "a", "plate"])
    run(tmp_path, data, config(), "r2", {"model_0000001.pth": (["0", "a", "plate"], [])})
    champion = json.loads((tmp_path / "r2" / "evaluation" / "evaluation.json").read_text())["champion"]
    assert champion["model_id"] == first.model_id
    assert champion["metrics"]["segm/AP-plate"] == pytest.approx(1.0)  # plates scored as plates
    assert champion["metrics"]["segm/AP-a"] == pytest.approx(1.0)
    assert champion["metrics"]["segm/AP-0"] == 0.0  # a class it cannot predict is scored as missing
    assert champion["missing_classes"] == ["0"]


def test_predictions_are_mapped_by_name_and_unknown_model_classes_dropped(tmp_path: Path) -> None:
    gt = json.loads((dataset(tmp_path, ["a", "plate"], images=2) / "val.json").read_text())
    model = StandIn(write_model(tmp_path / "m.pth", ["plate", "x", "a"]), gt)
    mapping = category_map(model.categories, gt)
    assert mapping.to_gt == {1: 2, 3: 1} and mapping.extra == ["x"] and mapping.missing == []
    results = predict_split(model, gt, tmp_path / "images", 0.05)
    assert {r["category_id"] for r in results} == {1, 2}
    assert score(gt, results, load_config().evaluate)["segm/AP50"] == pytest.approx(1.0)


def test_a_model_sharing_no_class_with_the_dataset_is_refused(tmp_path: Path) -> None:
    gt = json.loads((dataset(tmp_path, ["a", "plate"], images=1) / "val.json").read_text())
    with pytest.raises(Exception, match="share no name"):
        category_map([{"id": 1, "name": "cat"}], gt)


def test_the_bootstrap_refuses_a_gain_a_naive_comparison_accepts(setup) -> None:
    tmp_path, data, config, _ = setup
    dataset(data, ["a", "plate"], images=10)
    # The champion misses the objects of one image in ten; the challenger finds everything.
    champion = run(tmp_path, data, config(), "r1", {"model_0000001.pth": (["a", "plate"], [3])})
    assert champion.promoted
    naive = config("promotion.min_confidence=0")
    honest = config("promotion.min_confidence=0.9")
    refused = run(tmp_path, data, honest, "r2", {"model_0000001.pth": (["a", "plate"], [])})
    assert not refused.promoted and "required" in refused.reason
    evaluation = json.loads((tmp_path / "r2" / "evaluation" / "evaluation.json").read_text())["promotion"]
    assert evaluation["gain"] > 0 and 0.5 < evaluation["confidence"] < 0.9
    assert evaluation["samples"] == 400 and evaluation["images"] == 10  # 20 / (1 - 0.95) resamples
    assert evaluation["gain_low"] <= 0 < evaluation["gain"] <= evaluation["gain_high"]
    assert evaluation["interval_level"] == pytest.approx(0.9)
    accepted = run(tmp_path, data, naive, "r3", {"model_0000001.pth": (["a", "plate"], [])})
    assert accepted.promoted
    rows = promotions(tmp_path)
    assert [r[1] for r in rows] == [1, 0, 1]
    assert rows[1][2] == pytest.approx(evaluation["gain"]) and rows[1][3] == pytest.approx(evaluation["confidence"])


def test_a_clear_gain_is_promoted_with_high_confidence(setup) -> None:
    tmp_path, data, config, _ = setup
    dataset(data, ["a", "plate"], images=10)
    run(tmp_path, data, config(), "r1", {"model_0000001.pth": (["a", "plate"], [1, 2, 3, 4, 5, 6])})
    better = run(tmp_path, data, config(), "r2", {"model_0000001.pth": (["a", "plate"], [])})
    assert better.promoted
    assert json.loads((tmp_path / "r2" / "evaluation" / "evaluation.json").read_text())["promotion"]["confidence"] > 0.99


def test_margin_is_still_accepted_as_min_gain() -> None:
    assert load_config(None, ["promotion.margin=0.02"]).promotion.min_gain == 0.02
    assert load_config(None, ["evaluate.eir_char_score=0.7"]).evaluate.read_score == 0.7
    with pytest.raises(ConfigError, match="former name"):
        load_config(None, ["promotion.margin=0.02", "promotion.min_gain=0.01"])


def test_a_first_model_that_scores_nothing_is_not_promoted(setup) -> None:
    tmp_path, data, config, _ = setup
    dataset(data, ["a", "plate"], images=4)
    nothing = run(tmp_path, data, config(), "r1", {"model_0000001.pth": (["a", "plate"], [1, 2, 3, 4])})
    assert not nothing.promoted and "min_first_score" in nothing.reason
    assert registry.production(str(tmp_path / "registry")) is None
    anything = run(tmp_path, data, config("promotion.min_first_score=null"), "r2",
                   {"model_0000001.pth": (["a", "plate"], [1, 2, 3, 4])})
    assert anything.promoted


def test_a_nan_later_in_the_list_keeps_the_valid_best() -> None:
    rows = [{"checkpoint": f"c{i}", "iteration": i, "metrics": {"k": v}} for i, v in enumerate([0.3, math.nan, 0.2, math.nan])]
    assert select_best(rows, "k", "max")["checkpoint"] == "c0"
    assert select_best(rows, "k", "min")["checkpoint"] == "c2"
    assert select_best(rows[1:2] + rows[2:3], "k", "max")["checkpoint"] == "c2"
    assert select_best([rows[1], rows[3]], "k", "max")["checkpoint"] == "c3"


def _row(name: str, iteration: int, branch: str = "", **metrics: float) -> dict:
    return {"checkpoint": name, "iteration": iteration, "metrics": {k.replace("_", "/", 1): v for k, v in metrics.items()},
            **({"branch": branch} if branch else {})}


def test_ties_go_to_the_secondary_key_then_the_later_checkpoint_then_the_lower_branch() -> None:
    # segm/AP50-plate saturates at 1.0: model_100 (segm/AP 0.187) must not win over model_150 (0.288),
    # wherever it comes in the list, and a sweep's branch name must not decide.
    key = "segm/AP50-plate"
    early, late = _row("b1/model_100", 100, "b1", **{"segm_AP50-plate": 1.0, "segm_AP": 0.187}), \
        _row("b0/model_150", 150, "b0", **{"segm_AP50-plate": 1.0, "segm_AP": 0.288})
    for rows in ([early, late], [late, early]):
        assert select_best(rows, key, "max", "segm/AP")["checkpoint"] == "b0/model_150"
    same = [_row(f"b{b}/model_{i}", i, f"b{b}", **{"segm_AP50-plate": 1.0, "segm_AP": 0.3}) for b, i in
            ((2, 100), (10, 150), (2, 150), (3, 50))]
    assert select_best(same, key, "max", "segm/AP")["checkpoint"] == "b2/model_150"  # later, then b2 before b10
    assert select_best(same[:2], key, "max", "segm/AP")["checkpoint"] == "b10/model_150"
    assert load_config().evaluate.tie_break_key == "segm/AP"


@pytest.mark.parametrize("forged", [2.0, -5.0, 1e300, math.inf])
def test_a_score_outside_zero_to_one_is_refused(forged: float) -> None:
    rows = [_row("model_1", 1, segm_AP=0.2), _row("model_2", 2, segm_AP=forged)]
    with pytest.raises(InputError, match=r"model_2: segm/AP = .* is not a score in \[0, 1\]"):
        select_best(rows, "segm/AP", "max")


def test_select_decides_and_registers_with_the_score_it_recomputes(setup) -> None:
    # select re-predicts the selected checkpoint; a pod's claim (which selected it) must be what
    # those predictions score, and the decision and the registry take select's own numbers.
    from steps.evaluate.evaluate import conclude, prepare, score_checkpoints
    from steps.evaluate.groups import list_checkpoints

    tmp_path, data, config, _ = setup
    dataset(data, ["a", "plate"], images=10)
    settings = config("promotion.min_confidence=0")
    folder, out = tmp_path / "train" / "checkpoints", tmp_path / "select"
    write_model(folder / "model_0000001.pth", ["a", "plate"], [1, 2, 3])  # finds 7 of 10
    write_model(folder / "model_0000002.pth", ["a", "plate"], [1, 2, 3, 4, 5])  # finds 5 of 10
    gt = prepare(settings, data, out)
    rows, predicted = score_checkpoints(settings, gt, data, list_checkpoints(folder), out)
    good, poor = (row["metrics"]["segm/AP50"] for row in rows)
    assert good > poor + 0.1
    predictions = {row["checkpoint"]: predicted[row["checkpoint"]] for row in rows}

    def claim(values: list[float]) -> list[dict]:
        return [{**row, "metrics": {**row["metrics"], "segm/AP50": v}} for row, v in zip(rows, values)]

    def conclude_with(claimed: list[dict]):
        return conclude(settings, gt, data, claimed, predictions, out, "run", "datasets/v1")

    with pytest.raises(InputError, match=rf"model_0000002.pth: its evaluate pod claimed segm/AP50 = 0.9500, but its "
                                         rf"predictions score {poor:.4f} here"):
        conclude_with(claim([good, 0.95]))
    assert promotions(tmp_path) == [] and registry.production(str(tmp_path / "registry")) is None
    # Within the tolerance (a GPU's last digits): registered and decided with select's own score.
    result = conclude_with(claim([good - 0.009, poor]))
    assert result.best_checkpoint == "model_0000001.pth" and result.best_score == good
    registered = registry.show(str(tmp_path / "registry"), result.model_id)
    assert registered.metrics["segm/AP50"] == good
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["promotion"]["challenger_score"] == good
    assert evaluation["checkpoints"][0]["metrics"]["segm/AP50"] == good


def test_a_resumed_runs_history_reaches_the_registered_lineage(setup) -> None:
    tmp_path, data, config, _ = setup
    dataset(data, ["a", "plate"], images=2)
    history = [{"iteration": 4, "changed": {"train.iterations": {"from": 4, "to": 6}}}]
    path = write_model(tmp_path / "r1" / "checkpoints" / "model_0000006.pth", ["a", "plate"])
    save_checkpoint({**read_checkpoint(path), "history": history}, path)
    result = evaluate(config(), data, path.parent, tmp_path / "r1" / "evaluation", "r1", "datasets/v1")
    assert registry.show(str(tmp_path / "registry"), result.model_id).lineage["history"] == history


def test_the_cluster_config_refuses_a_min_confidence_below_its_floor() -> None:
    cluster = Path(__file__).parent.parent / "configs" / "cluster.yaml"
    assert load_config(cluster).promotion.min_confidence_floor > 0
    with pytest.raises(ConfigError, match=r"promotion.min_confidence: below this config's promotion.min_confidence_floor"):
        load_config(cluster, ["promotion.min_confidence=0"])
    with pytest.raises(ConfigError, match=r"--set promotion.min_confidence_floor: set only in a config file"):
        load_config(cluster, [], "promotion.min_confidence_floor=0 promotion.min_confidence=0")
    assert load_config(None, ["promotion.min_confidence=0"]).promotion.min_confidence == 0  # no floor by default


def test_a_dataset_without_plates_is_evaluated_with_the_default_keys(setup) -> None:
    tmp_path, data, _, _ = setup
    dataset(data, ["car", "person"], images=3)
    defaults = load_config(None, [f"promotion.registry={tmp_path / 'registry'}"])
    defaults.database.url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    result = run(tmp_path, data, defaults, "r1", {"model_0000001.pth": (["car", "person"], []),
                                                  "model_0000002.pth": (["car", "person"], [1])})
    assert result.promoted and result.best_checkpoint == "model_0000001.pth"
    evaluation = json.loads((tmp_path / "r1" / "evaluation" / "evaluation.json").read_text())
    assert evaluation["select_key"] == "segm/AP" and "EIR" not in evaluation["checkpoints"][0]["metrics"]


def test_a_mistyped_select_key_is_refused_before_any_checkpoint_is_scored(setup) -> None:
    tmp_path, data, config, _ = setup
    dataset(data, ["a", "plate"], images=2)
    with pytest.raises(ConfigError, match="evaluate.select_key: 'segm/AP5'"):
        run(tmp_path, data, config("evaluate.select_key=segm/AP5"), "r1", {"model_0000001.pth": (["a", "plate"], [])})
    with pytest.raises(ConfigError, match="evaluate.tie_break_key: 'segm/AP-car'"):
        run(tmp_path, data, config("evaluate.tie_break_key=segm/AP-car"), "r1", {"model_0000001.pth": (["a", "plate"], [])})
    assert StandInBackend.loads == []


def test_a_failed_pointer_move_leaves_neither_promotion_nor_rows(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path, data, config, _ = setup
    dataset(data, ["a", "plate"], images=2)

    def refused(*args: Any, **kwargs: Any) -> None:
        raise OSError("bucket unreachable")

    monkeypatch.setattr(registry, "promote", refused)
    with pytest.raises(OSError):
        run(tmp_path, data, config(), "r1", {"model_0000001.pth": (["a", "plate"], [])})
    assert registry.production(str(tmp_path / "registry")) is None
    assert promotions(tmp_path) == []


def test_a_run_killed_between_promoting_and_recording_is_reconciled_by_the_next(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path, data, config, _ = setup
    dataset(data, ["a", "plate"], images=2)
    promote = registry.promote

    def promote_then_die(*args: Any, **kwargs: Any) -> None:
        promote(*args, **kwargs)
        raise KeyboardInterrupt  # SIGKILL-like: after the pointer moved, before the commit

    monkeypatch.setattr(registry, "promote", promote_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, data, config(), "r1", {"model_0000001.pth": (["a", "plate"], [])})
    production = registry.production(str(tmp_path / "registry"))
    assert production is not None and promotions(tmp_path) == []
    monkeypatch.setattr(registry, "promote", promote)

    run(tmp_path, data, config(), "r2", {"model_0000001.pth": (["a", "plate"], [])})
    rows = promotions(tmp_path)
    assert rows[0][:2] == (production["model_id"], 1) and rows[0][4] == RECONCILED
    with Database(f"sqlite:///{tmp_path / 'meta.sqlite'}").transaction() as tx:
        known = {r[0] for r in tx.query("SELECT model_id FROM models")}
    assert registry.production(str(tmp_path / "registry"))["model_id"] in known


def test_the_champion_is_loaded_with_the_backend_its_lineage_records(setup) -> None:
    tmp_path, data, config, backends = setup
    dataset(data, ["a", "plate"], images=2)
    run(tmp_path, data, config("model.backend=detectron2"), "r1", {"model_0000001.pth": (["a", "plate"], [])})
    backends.clear()
    run(tmp_path, data, config("model.backend=torchvision"), "r2", {"model_0000001.pth": (["a", "plate"], [])})
    assert backends == ["torchvision", "detectron2"]  # checkpoints with this run's, the champion with its own


def test_metric_keys_name_every_key_all_metrics_returns(tmp_path: Path) -> None:
    from steps.metrics import all_metrics
    from steps.metrics.summary import metric_keys

    gt = json.loads((dataset(tmp_path, ["1", "plate"], images=2) / "val.json").read_text())
    model = StandIn(write_model(tmp_path / "m.pth", ["1", "plate"]), gt)
    config = load_config().evaluate
    assert set(all_metrics(gt, predict_split(model, gt, tmp_path, 0.05), config)) <= metric_keys(gt, config)


def test_the_best_of_several_checkpoints_and_a_long_reign_must_be_surer() -> None:
    from steps.evaluate.bootstrap import Comparison
    from steps.evaluate.promotion import Evidence, decide, required_confidence, resamples, test_level

    promotion = load_config().promotion  # min_confidence 0.9
    assert required_confidence(0.9, 1) == pytest.approx(0.95)  # half the level: the first test of a reign
    assert required_confidence(0.9, 4) == pytest.approx(1 - 0.05 / 4)
    # The k-th test of one champion's reign at alpha / (k (k + 1)): any reign sums to at most alpha.
    assert sum(test_level(0.9, 1, k) for k in range(1, 10_000)) < 0.1
    assert required_confidence(0.9, 1, 3) == pytest.approx(1 - 0.1 / 12)
    # Enough resamples to see the level: 200 barely resolved 0.9917 (12 checkpoints).
    assert resamples(test_level(0.9, 6), promotion) == 2400
    assert resamples(test_level(0.9, 1), promotion) == 400
    assert resamples(test_level(0.9, 500, 9), promotion) == promotion.max_bootstrap_samples

    enough = Evidence(images=200, objects=300)
    sure = Comparison(gain=0.1, low=0.02, high=0.18, alpha=0.05, p_value=0.02, samples=400, images=200, passed=True)
    assert decide(0.6, 0.5, sure, promotion, "max", 1, 1, enough).promoted
    picked = decide(0.6, 0.5, sure.__class__(**{**sure.__dict__, "passed": False}), promotion, "max", 4, 1, enough)
    assert not picked.promoted and f"< {1 - 0.05 / 4:.4f} required (4 checkpoints compared)" in picked.reason


def test_too_few_validation_images_are_not_enough_evidence_whichever_way_they_point() -> None:
    from steps.evaluate.promotion import Evidence, decide

    promotion = load_config().promotion  # min_images 50, min_objects 50
    for challenger in (0.9, 0.1):  # a big gain or a big loss: 8 images say neither
        decision = decide(challenger, 0.5, None, promotion, "max", evidence=Evidence(images=8, objects=9))
        assert not decision.promoted and "not enough evidence" in decision.reason and "worse" not in decision.reason
        assert "8 validation images" in decision.reason and "promotion.min_images 50" in decision.reason
    few_plates = decide(0.9, 0.5, None, promotion, "max", evidence=Evidence(images=80, objects=20))
    assert not few_plates.promoted and "not enough evidence" in few_plates.reason


def test_the_evidence_counts_the_objects_the_key_scores(tmp_path: Path) -> None:
    from steps.evaluate.promotion import Evidence, evidence

    gt = json.loads((dataset(tmp_path, ["1", "2", "plate"], images=7) / "val.json").read_text())
    gt["annotations"] = [a for a in gt["annotations"] if not (a["category_id"] == 3 and a["image_id"] > 4)]
    assert evidence(gt, "segm/AP", "plate") == Evidence(7, 7 * 2 + 4)
    assert evidence(gt, "segm/AP50-plate", "plate") == Evidence(7, 4)
    assert evidence(gt, "EIR", "plate") == Evidence(7, 4)
    assert evidence(gt, "dv_AP-2", "plate") == Evidence(7, 7)


@pytest.mark.parametrize("seed", range(40))
def test_the_centred_test_passes_exactly_when_the_interval_clears_min_gain(seed: int) -> None:
    from steps.evaluate.bootstrap import gain_test

    rng = np.random.default_rng(seed)
    gain, min_gain, alpha = rng.uniform(-0.1, 0.2), rng.choice([0.0, 0.005, 0.05]), rng.choice([0.1, 0.05, 0.0083])
    resampled = rng.normal(gain + rng.normal(0, 0.02), rng.uniform(0.001, 0.1), int(rng.integers(5, 2000)))
    resampled[rng.random(len(resampled)) < 0.05] = np.nan  # undefined resamples are left out
    test = gain_test(gain, resampled, min_gain, alpha, images=60)
    assert test.samples == np.count_nonzero(~np.isnan(resampled))
    assert test.passed == (test.p_value <= alpha) == (test.low > min_gain)
    assert test.low <= test.high  # centred on the bootstrap's bias, not always around `gain`


def test_too_few_resamples_to_resolve_the_level_pass_nothing() -> None:
    from steps.evaluate.bootstrap import gain_test

    test = gain_test(0.3, np.full(50, 0.3), 0.0, alpha=0.01, images=60)  # 51 x 0.01 < 1
    assert not test.passed and test.low == -math.inf and test.p_value == pytest.approx(1 / 51)
    assert math.isnan(gain_test(0.3, np.full(9, np.nan), 0.0, 0.05, 60).confidence)


def test_a_reign_of_tests_against_one_champion_is_counted_in_the_database(setup) -> None:
    from steps.notify.outcome import RunOutcome, with_stored_results
    from steps.notify.webhook import summary_text

    tmp_path, data, config, _ = setup
    dataset(data, ["a", "plate"], images=10)
    run(tmp_path, data, config(), "r1", {"model_0000001.pth": (["a", "plate"], [3])})
    for name in ("r2", "r3"):  # a gain the bootstrap cannot confirm, twice against the same champion
        assert not run(tmp_path, data, config(), name, {"model_0000001.pth": (["a", "plate"], [])}).promoted
    db = Database(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    with db.transaction() as tx:
        rows = tx.query("SELECT reign_comparison, required_confidence, gain_low, gain_high, interval_level "
                        "FROM promotions ORDER BY id")
    assert [r[0] for r in rows] == [None, 1, 2]
    assert rows[1][1] == pytest.approx(0.95) and rows[2][1] == pytest.approx(1 - 0.1 / 6)
    assert rows[2][2] < rows[2][3] and rows[2][4] == pytest.approx(1 - 2 * 0.1 / 6)
    third = json.loads((tmp_path / "r3" / "evaluation" / "evaluation.json").read_text())["promotion"]
    assert third["reign_comparison"] == 2 and third["samples"] == 1200
    # The gain's interval reaches notify's summary (through the decision's reason).
    outcome = with_stored_results(RunOutcome("r3", "Succeeded", "2026-01-01T00:00:00Z", ""), db)
    assert f"96.7% interval [{third['gain_low']:+.4f}, {third['gain_high']:+.4f}]" in summary_text(outcome)


def _cores_seen(_shared: object, _item: int = 0) -> int:
    from steps.parallel import available_cpus

    return available_cpus()


def test_the_bootstrap_on_two_processes_draws_and_scores_as_one(tmp_path: Path) -> None:
    from steps.config import EvaluateConfig
    from steps.evaluate.bootstrap import bootstrap_key, paired_bootstrap
    from steps.metrics.summary import family_metrics
    from steps.parallel import parallel_map_shared

    gt = json.loads((dataset(tmp_path, ["a", "plate"], images=12) / "val.json").read_text())

    def predictions(misses: set[int]) -> list[dict[str, Any]]:
        return [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9, "bbox": a["bbox"],
                 "segmentation": encode(polygons_to_mask(a["segmentation"], H, W))}
                for a in gt["annotations"] if a["image_id"] not in misses]

    def metric(sample_gt: dict, sample_results: list[dict]) -> float:  # a closure: it is never pickled
        return family_metrics("segm", sample_gt, sample_results, EvaluateConfig())["segm/AP"]

    ours, theirs = predictions({2}), predictions({3, 7})
    one = paired_bootstrap(gt, ours, theirs, metric, samples=40, workers=1)
    two = paired_bootstrap(gt, ours, theirs, metric, samples=40, workers=2)
    assert np.array_equal(one, two) and len(one) == 40 and 0.5 < np.mean(one > 0) < 1.0
    # As evaluate runs it (predictions checked once, polygons rasterised once): the same draws,
    # the same scores.
    assert np.array_equal(bootstrap_key(gt, ours, theirs, "segm/AP", EvaluateConfig(), samples=40, workers=2), one)
    bad = [*theirs[:-1], {**theirs[-1], "segmentation": {"size": [H, W], "counts": "0"}}]
    with pytest.raises(InputError, match=rf"predictions\[{len(theirs) - 1}\]\.segmentation: not a valid RLE"):
        bootstrap_key(gt, ours, bad, "segm/AP", EvaluateConfig(), samples=40)


def test_maps_stay_in_a_worker_and_in_a_process_whose_library_threads_started(monkeypatch: pytest.MonkeyPatch) -> None:
    from steps import parallel

    # A worker's own maps stay in it: no processes of processes.
    monkeypatch.setattr(parallel, "_threads", None)
    assert parallel.parallel_map_shared(_cores_seen, None, [0, 1, 2, 3], workers=2) == [1, 1, 1, 1]
    # After hotcoco's pool started here, a forked copy calling it would wait forever: maps stay here.
    parallel.threads_started("a test's pool")
    cores = parallel.available_cpus()
    assert parallel.parallel_map_shared(_cores_seen, None, [0, 1, 2, 3], workers=2) == [cores] * 4
    assert parallel.parallel_map(_cores_seen, [0, 1, 2, 3], workers=2, _item=0) == [cores] * 4


def test_a_split_with_a_repeated_image_id_is_refused_by_name(tmp_path: Path) -> None:
    from steps.evaluate.scoring import load_split

    folder = dataset(tmp_path, ["a", "plate"], images=3)
    gt = json.loads((folder / "val.json").read_text())
    gt["images"].append(dict(gt["images"][0]))
    (folder / "val.json").write_text(json.dumps(gt))
    with pytest.raises(InputError, match=r"val\.json: images\[\d+\]: id \d+ is already the id of an earlier image"):
        load_split(folder, "val")


@pytest.mark.parametrize("content, message", [
    (None, r"test\.json: COCO ground truth file not found; the dataset folder should be the record step's output"),
    (b'{"images": [', r"test\.json: not valid JSON \(line 1, column 13\)"),
    (b'{"images": "\xff"}', r"test\.json: not UTF-8 text \(byte 12\); save it as UTF-8 JSON"),
    (b"[" * 100_000, r"test\.json: JSON nested too deeply to be a COCO ground truth file"),
])
def test_a_missing_or_broken_split_file_is_one_error_naming_it(tmp_path: Path, content: bytes | None, message: str) -> None:
    from steps.evaluate.scoring import load_split

    if content is not None:
        (tmp_path / "test.json").write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_split(tmp_path, "test")


def test_production_is_predicted_once_per_dataset_version_and_split(setup) -> None:
    # The champion's predictions on a split are kept beside it in the registry; a later run on the
    # same dataset version and split scores them without loading the model, another version does not.
    tmp_path, data, config, _ = setup
    dataset(data, ["a", "plate"], images=10)
    first = run(tmp_path, data, config(), "r1", {"model_0000001.pth": (["a", "plate"], [3])})
    champion_file = tmp_path / "registry" / "models" / first.model_id / "model.pth"

    def champion_loads() -> int:
        return sum(1 for path in StandInBackend.loads if path.name == "model.pth")

    scores = []
    for name in ("r2", "r3"):
        run(tmp_path, data, config(), name, {"model_0000001.pth": (["a", "plate"], [])})
        scores.append(json.loads((tmp_path / name / "evaluation" / "evaluation.json").read_text())["champion"])
    assert champion_file.is_file() and champion_loads() == 1  # r2 predicted with it, r3 read r2's predictions
    assert scores[0] == scores[1]
    kept = list((tmp_path / "registry" / "models" / first.model_id / "predictions").glob("*.json"))
    assert len(kept) == 1
    kept[0].write_text("{damaged")  # predicted again, and kept anew
    run(tmp_path, data, config(), "r4", {"model_0000001.pth": (["a", "plate"], [])})
    assert champion_loads() == 2 and json.loads(kept[0].read_text())["results"]
    folder = tmp_path / "r5" / "checkpoints"
    write_model(folder / "model_0000001.pth", ["a", "plate"], [])
    evaluate(config(), data, folder, tmp_path / "r5" / "evaluation", "r5", "datasets/v2")  # another version
    assert champion_loads() == 3
