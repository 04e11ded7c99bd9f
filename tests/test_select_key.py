"""evaluate.select_key as an order of preference: the shipped local config works on any dataset,
and a key no dataset metric matches stops train before it trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from steps.config import Config, load_config
from steps.errors import ConfigError
from steps.metrics.summary import metric_keys, resolve_select_key
from tests.tiny_coco import make_coco_dataset

ROOT = Path(__file__).resolve().parents[1]
PLATES = {"categories": [{"id": 1, "name": "plate"}, *({"id": i + 2, "name": str(i)} for i in range(10))]}
SHAPES = {"categories": [{"id": i + 1, "name": name} for i, name in enumerate(["circle", "square", "star"])]}


def _local_config() -> Config:
    return load_config(str(ROOT / "configs" / "local.yaml"), [], "")


@pytest.mark.parametrize(("gt", "chosen"), [(PLATES, "EIR"), (SHAPES, "segm/AP")])
def test_the_local_config_selects_by_plates_read_where_there_are_plates_and_by_segm_ap_elsewhere(gt: dict, chosen: str) -> None:
    config = _local_config()
    assert config.evaluate.select_key == ["EIR", "segm/AP"]
    assert resolve_select_key(config.evaluate, metric_keys(gt, config.evaluate)) == chosen
    assert config.evaluate.select_key == chosen  # what select, the reports and evaluation.json then read


def test_a_key_no_metric_of_the_dataset_matches_is_refused_naming_it_and_the_fallback() -> None:
    config = load_config(None, ["evaluate.select_key=segm/AP50-plate"], "")
    with pytest.raises(ConfigError, match=r"evaluate.select_key: 'segm/AP50-plate' is not a metric of this dataset.*"
                                          r"\[segm/AP50-plate, segm/AP\] falls back"):
        resolve_select_key(config.evaluate, metric_keys(SHAPES, config.evaluate))
    listed = load_config(None, ["evaluate.select_key=[bbox/AP-plate, segm/AP50-plate]"], "")
    with pytest.raises(ConfigError, match=r"\['bbox/AP-plate', 'segm/AP50-plate'\] is not a metric"):
        resolve_select_key(listed.evaluate, metric_keys(SHAPES, listed.evaluate))


def test_an_empty_list_of_keys_is_refused_when_the_config_loads() -> None:
    with pytest.raises(ConfigError, match="empty list"):
        load_config(None, ["evaluate.select_key=[]"], "")


def test_train_refuses_a_key_the_dataset_has_no_metric_for_before_it_trains(tmp_path: Path) -> None:
    from steps.train.__main__ import main

    data = make_coco_dataset(tmp_path / "dataset")  # classes: plate, char
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"evaluate": {"select_key": "segm/AP50-circle"},
                                      "model": {"backbone": "resnet18", "pretrained": "none"}}))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="'segm/AP50-circle' is not a metric of this dataset"):
        main(["--dataset-dir", str(data), "--output", str(out), "--config", str(config)])
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())
