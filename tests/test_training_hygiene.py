"""Training settings that silently hurt a model: decay on norm/bias, half-loaded backbones (or
FPNs), resume with settings that change what the run learns (torchvision backend; detectron2's
optimizer groups at the end)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from steps.config import Config, ModelConfig, dump_config
from steps.errors import ConfigError
from steps.models.checkpoints import capture_rng, check_resumable
from steps.models.torchvision_backend import make_optimizer
from steps.models.torchvision_model import build_model, load_initial_weights

TINY = {"backend": "torchvision", "backbone": "resnet18", "pretrained": "none", "min_size": 64, "max_size": 96}


def test_no_weight_decay_on_norm_layers_and_biases() -> None:
    config = Config.model_validate({"model": TINY, "train": {"weight_decay": 0.01}})
    model = build_model(config.model, num_classes=3)
    optimizer = make_optimizer(model, config)
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        norm_or_bias = name.endswith(".bias") or ".bn" in name or "downsample.1" in name
        assert decay[id(param)] == (0.0 if norm_or_bias else 0.01), name
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == sum(
        p.numel() for group in optimizer.param_groups for p in group["params"])


def test_weights_that_fit_only_part_of_the_backbone_are_refused(tmp_path: Path) -> None:
    # resnet50's bottleneck blocks: the stem fits a resnet18, the stages do not.
    other = build_model(ModelConfig.model_validate({**TINY, "backbone": "resnet50"}), num_classes=3)
    path = tmp_path / "resnet50.pth"
    torch.save(other.state_dict(), path)
    config = ModelConfig.model_validate({**TINY, "pretrained": str(path)})
    with pytest.raises(ConfigError, match=r"fits only \d+ of the \d+ resnet18 backbone weights"):
        load_initial_weights(build_model(config, num_classes=3), config)
    # A file with the first layers only leaves the rest random: refused too.
    partial = {k: v for k, v in build_model(config, num_classes=3).state_dict().items() if "layer4" not in k}
    torch.save(partial, path)
    with pytest.raises(ConfigError, match="layer4"):
        load_initial_weights(build_model(config, num_classes=3), config)


def test_weights_without_the_fpn_are_refused(tmp_path: Path) -> None:
    config = ModelConfig.model_validate({**TINY, "pretrained": str(tmp_path / "weights.pth")})
    whole = build_model(config, num_classes=3).state_dict()
    torch.save({k: v for k, v in whole.items() if not k.startswith("backbone.fpn.")}, tmp_path / "weights.pth")
    with pytest.raises(ConfigError, match=r"fits only 0 of the 16 resnet18 FPN weights \(not backbone.fpn"):
        load_initial_weights(build_model(config, num_classes=3), config)
    torch.save(whole, tmp_path / "weights.pth")
    assert load_initial_weights(build_model(config, num_classes=3), config) == []  # the whole model: fine


def test_resuming_with_another_batch_size_is_refused() -> None:
    saved = Config.model_validate({"model": TINY, "train": {"batch_size": 4}})
    state = _state(saved, iteration=10)
    check_resumable(state, "torchvision", saved, state["categories"], Path("out"))
    changed = Config.model_validate({"model": TINY, "train": {"batch_size": 2}})
    with pytest.raises(ConfigError, match="train.batch_size=4, not 2"):
        check_resumable(state, "torchvision", changed, state["categories"], Path("out"))


def _state(config: Config, iteration: int = 2) -> dict[str, Any]:
    """A checkpoint's fields as the trainer writes them (a stand-in for the weights)."""
    return {"backend": "torchvision", "iteration": iteration, "model": {"w": torch.ones(2)},
            "optimizer": {"state": {}, "param_groups": [{"params": [0], "lr": 0.01}]}, "scheduler": {},
            "scaler": {}, "rng": capture_rng(), "config": dump_config(config),
            "categories": [{"id": 1, "name": "plate"}]}


@pytest.mark.parametrize(("override", "shown"), [
    ({"train": {"seed": 7}}, "train.seed=0, not 7"),
    ({"train": {"lr": 0.05}}, "train.lr=0.01, not 0.05"),
    ({"model": {"anchor_sizes": [8, 16, 32, 64, 128]}}, "model.anchor_sizes=[], not [8, 16, 32, ...]"),
    ({"model": {"min_size": 96}}, "model.min_size=64, not 96"),
    ({"train": {"hflip": 0.5}}, "train.hflip=0.0, not 0.5"),
    ({"model": {"backbone": "resnet34"}}, "model.backbone='resnet18', not 'resnet34'"),
    ({"model": {"pretrained": "imagenet"}}, "model.pretrained='none', not 'imagenet'"),
])
def test_resuming_with_settings_that_change_the_run_is_refused(override: dict, shown: str) -> None:
    saved = Config.model_validate({"model": TINY})
    state = _state(saved)
    check_resumable(state, "torchvision", saved, state["categories"], Path("out"))
    data = saved.model_dump(mode="json")
    for section, values in override.items():
        data[section].update(values)
    with pytest.raises(ConfigError, match=rf"out: checkpoints there were trained with {re.escape(shown)}; resume with "
                                          "the same settings"):
        check_resumable(state, "torchvision", Config.model_validate(data), state["categories"], Path("out"))


def test_where_and_how_long_a_run_trains_may_change_on_resume() -> None:
    saved = Config.model_validate({"model": TINY})
    longer = Config.model_validate({"model": {**TINY, "rpn_proposals_test": 100},
                                    "train": {"iterations": 4000, "checkpoint_period": 10, "num_workers": 0}})
    state = _state(saved)
    check_resumable(state, "torchvision", longer, state["categories"], Path("out"))


def test_detectron2_has_no_weight_decay_on_norm_layers_and_biases() -> None:
    pytest.importorskip("detectron2", reason="detectron2 is not importable (put its source on PYTHONPATH)")
    from detectron2.modeling import build_model as build_d2

    from steps.models.detectron2_backend import make_optimizer as make_d2_optimizer
    from steps.models.detectron2_config import build_cfg

    for optimizer_name in ("sgd", "adamw"):
        config = Config.model_validate({"model": {**TINY, "backend": "detectron2"},
                                        "train": {"weight_decay": 0.01, "optimizer": optimizer_name}})
        cfg = build_cfg(config, 2, "cpu")
        model = build_d2(cfg)
        optimizer = make_d2_optimizer(cfg, model, config)
        decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
        for name, param in model.named_parameters():
            if param.requires_grad and param.ndim <= 1:
                assert decay[id(param)] == 0.0, (optimizer_name, name)
            elif param.requires_grad:
                assert decay[id(param)] == 0.01, (optimizer_name, name)


def test_detectron2_refuses_weights_that_fit_only_part_of_the_backbone(tmp_path: Path) -> None:
    pytest.importorskip("detectron2", reason="detectron2 is not importable (put its source on PYTHONPATH)")
    from detectron2.modeling import build_model as build_d2

    from steps.models.detectron2_backend import load_initial_weights as load_d2
    from steps.models.detectron2_config import build_cfg

    def model(backbone: str) -> torch.nn.Module:
        config = Config.model_validate({"model": {**TINY, "backend": "detectron2", "backbone": backbone}})
        return build_d2(build_cfg(config, 2, "cpu"))

    path = tmp_path / "weights.pth"
    torch.save({"model": model("resnet18").state_dict()}, path)
    load_d2(model("resnet18"), str(path), str(path))  # the same backbone: fine
    torch.save({"model": model("resnet50").state_dict()}, path)
    with pytest.raises(ConfigError, match=r"fits only \d+ of the \d+ backbone and FPN convolutions"):
        load_d2(model("resnet18"), str(path), str(path))
    # Without the FPN: refused as the backbone is, unless a backbone alone was asked for.
    torch.save({"model": {k: v for k, v in model("resnet18").state_dict().items() if "fpn" not in k}}, path)
    with pytest.raises(ConfigError, match=r"\(not backbone.fpn"):
        load_d2(model("resnet18"), str(path), str(path))
    load_d2(model("resnet18"), str(path), "imagenet")
