"""Mask R-CNN from torchvision with a configurable backbone, and its starting weights.

The architecture depends only on the model config (and the category count), so a checkpoint is
rebuilt from the config it stores; downloading pretrained weights is a separate, training-only step.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn
from torchvision.models import (
    MobileNet_V3_Large_Weights,
    ResNet18_Weights,
    ResNet34_Weights,
    ResNet50_Weights,
    ResNet101_Weights,
)
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, mobilenet_backbone, resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNN_ResNet50_FPN_Weights, MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import FeaturePyramidNetwork, FrozenBatchNorm2d, MultiScaleRoIAlign

from steps.config import ModelConfig
from steps.errors import ConfigError, ExternalError
from steps.models.checkpoints import unpickling_reason

T = TypeVar("T")

IMAGENET_WEIGHTS = {
    "resnet18": ResNet18_Weights.IMAGENET1K_V1,
    "resnet34": ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": ResNet50_Weights.IMAGENET1K_V1,
    "resnet101": ResNet101_Weights.IMAGENET1K_V1,
    "mobilenet_v3_large": MobileNet_V3_Large_Weights.IMAGENET1K_V1,
}
BACKBONES = tuple(IMAGENET_WEIGHTS)
# torchvision publishes COCO Mask R-CNN weights for this backbone only.
COCO_WEIGHTS = {"resnet50": MaskRCNN_ResNet50_FPN_Weights.COCO_V1}


def check_architecture(model: ModelConfig) -> None:
    if model.backbone not in BACKBONES:
        raise ConfigError(f"model.backbone: {model.backbone!r} is not a torchvision backbone (known: {', '.join(BACKBONES)})")
    if model.min_size > model.max_size:
        raise ConfigError(f"model.min_size ({model.min_size}) is larger than model.max_size ({model.max_size}); swap them")


def check_model_config(model: ModelConfig) -> None:
    """Reject what the torchvision backend cannot build or start from, before any work starts."""
    check_architecture(model)
    pretrained = model.pretrained
    if pretrained in ("none", "imagenet"):
        return
    if pretrained == "coco":
        if model.backbone not in COCO_WEIGHTS:
            raise ConfigError(
                f"model.pretrained: torchvision has COCO Mask R-CNN weights for {', '.join(COCO_WEIGHTS)} only, "
                f"not {model.backbone!r}; use pretrained=imagenet or backbone=resnet50"
            )
        return
    if pretrained.startswith(("http://", "https://")):
        return
    if not Path(pretrained).is_file():
        raise ConfigError(
            f"model.pretrained: {pretrained!r} is not none/imagenet/coco, an http(s) URL, or an existing file"
        )


def _sampling_ratio(model: ModelConfig) -> int:
    return 2 if model.roi_sampling_ratio is None else model.roi_sampling_ratio  # torchvision's own: 2


def _from_scratch(model: ModelConfig) -> bool:
    return model.pretrained == "none"


def build_model(model: ModelConfig, num_classes: int, download: bool = False) -> MaskRCNN:
    """Mask R-CNN for `num_classes` (categories + background).

    From scratch, every layer trains with ordinary BatchNorm (nothing to freeze); from pretrained
    weights, BatchNorm is frozen and the first stages stay fixed, as torchvision does.
    `download` fetches ImageNet backbone weights (pretrained=imagenet); False builds the same
    architecture with random weights, which is what loading a checkpoint needs.
    """
    check_architecture(model)
    scratch = _from_scratch(model)
    norm_layer = nn.BatchNorm2d if scratch else FrozenBatchNorm2d
    backbone_weights = IMAGENET_WEIGHTS[model.backbone] if download and model.pretrained == "imagenet" else None
    if backbone_weights is not None:
        _fetch(lambda: backbone_weights.get_state_dict(progress=False), model)  # into torch's cache
    common = {
        "num_classes": num_classes,
        "min_size": model.min_size,
        "max_size": model.max_size,
        # Sampled RoIs per image for the box/mask heads: the heads' cost on a CPU scales with it.
        "box_batch_size_per_image": model.roi_batch_size_per_image,
        "rpn_post_nms_top_n_test": model.rpn_proposals_test,
        "box_nms_thresh": model.box_nms_thresh,
    }
    if model.backbone == "mobilenet_v3_large":
        backbone = mobilenet_backbone(
            backbone_name="mobilenet_v3_large",
            weights=backbone_weights,
            fpn=True,
            norm_layer=norm_layer,
            trainable_layers=6 if scratch else 3,
        )
        # This FPN has two feature maps plus a pooled level: anchors and RoI pooling must match.
        sizes = tuple(model.anchor_sizes or (32, 64, 128, 256, 512))
        anchors = AnchorGenerator(sizes=(sizes,) * 3, aspect_ratios=((0.5, 1.0, 2.0),) * 3)
        return MaskRCNN(
            _with_fpn_width(backbone, model.fpn_channels),
            rpn_anchor_generator=anchors,
            box_roi_pool=MultiScaleRoIAlign(["0", "1"], output_size=7, sampling_ratio=_sampling_ratio(model)),
            mask_roi_pool=MultiScaleRoIAlign(["0", "1"], output_size=14, sampling_ratio=_sampling_ratio(model)),
            **_heads(common, model),
        )
    backbone = resnet_fpn_backbone(
        backbone_name=model.backbone,
        weights=backbone_weights,
        norm_layer=norm_layer,
        trainable_layers=5 if scratch else 3,
    )
    levels = ["0", "1", "2", "3"]
    common["box_roi_pool"] = MultiScaleRoIAlign(levels, output_size=7, sampling_ratio=_sampling_ratio(model))
    common["mask_roi_pool"] = MultiScaleRoIAlign(levels, output_size=14, sampling_ratio=_sampling_ratio(model))
    if model.anchor_sizes:  # one size per FPN level (four stages and a pooled one)
        common["rpn_anchor_generator"] = AnchorGenerator(
            sizes=tuple((size,) for size in model.anchor_sizes), aspect_ratios=((0.5, 1.0, 2.0),) * len(model.anchor_sizes)
        )
    return MaskRCNN(_with_fpn_width(backbone, model.fpn_channels), **_heads(common, model))


def _with_fpn_width(backbone: BackboneWithFPN, channels: int) -> BackboneWithFPN:
    """`backbone` with an FPN of `channels` outputs (torchvision's builders make 256)."""
    if channels != backbone.out_channels:
        inputs = [block[0].in_channels for block in backbone.fpn.inner_blocks]
        backbone.fpn = FeaturePyramidNetwork(inputs, channels, extra_blocks=backbone.fpn.extra_blocks)
        backbone.out_channels = channels
    return backbone


def _heads(common: dict[str, object], model: ModelConfig) -> dict[str, object]:
    """MaskRCNN's arguments with a box head 4x the FPN's width and a mask head of
    `mask_head_channels` (default: the FPN's): at 256 and 256, torchvision's own heads (a box
    head of 1024, four mask convolutions of 256), with the same weight names and shapes."""
    channels, mask = model.fpn_channels, model.mask_head_channels or model.fpn_channels
    if channels == 256 and mask == 256:
        return common
    classes = common["num_classes"]
    return {**common, "num_classes": None,
            "box_head": TwoMLPHead(channels * 7 * 7, 4 * channels), "box_predictor": FastRCNNPredictor(4 * channels, classes),
            "mask_head": MaskRCNNHeads(channels, (mask,) * 4, 1), "mask_predictor": MaskRCNNPredictor(mask, mask, classes)}


def _fetch(download: Callable[[], T], model: ModelConfig) -> T:
    """Run a weights download; a network or checksum failure becomes one clear error."""
    try:
        return download()
    except pickle.UnpicklingError as exc:  # torch's weights-only refusal: the file holds code
        raise ConfigError(f"model.pretrained: cannot read {model.pretrained} as weights: {unpickling_reason(exc)}") from None
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a bad checksum a RuntimeError
        raise ExternalError(
            f"model.pretrained={model.pretrained}: downloading {model.backbone} weights failed ({exc}); "
            "this machine needs internet access (or a warm torch hub cache), or use pretrained=none or a weights file"
        ) from None


def load_initial_weights(net: MaskRCNN, model: ModelConfig) -> list[str]:
    """Load COCO weights or a weights file/URL into `net`; returns the keys left at random init.

    Keys whose shapes differ (the class-specific predictor heads) are skipped, so COCO's 91-class
    heads or another dataset's checkpoint can start a model with a different category count; a file
    that leaves any backbone weight unfit (another backbone, a partial file) is a ConfigError.
    """
    if model.pretrained in ("none", "imagenet"):
        return []
    if model.pretrained == "coco":
        state = _fetch(lambda: COCO_WEIGHTS[model.backbone].get_state_dict(progress=False), model)
    elif model.pretrained.startswith(("http://", "https://")):
        url = model.pretrained
        state = _fetch(lambda: torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False, weights_only=True), model)
    else:
        try:
            state = torch.load(model.pretrained, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise ConfigError(f"model.pretrained: cannot read {model.pretrained} as weights: {unpickling_reason(exc)}") from None
        except Exception as exc:  # not a torch file, or one holding arbitrary objects
            raise ConfigError(f"model.pretrained: cannot read {model.pretrained} as weights ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a trainyard checkpoint
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ConfigError(f"model.pretrained: {model.pretrained!r} has no weights that fit a {model.backbone} Mask R-CNN")
    # Frozen BatchNorm and frozen first stages would keep unfit backbone weights at their random
    # start for good; an FPN left random gives the heads features no training made
    # (pretrained=imagenet is the way to start from a backbone alone).
    for prefix, part, fix in (("backbone.body.", "backbone", "or pretrained=none to train from scratch"),
                              ("backbone.fpn.", "FPN", "pretrained=imagenet for the backbone alone, or pretrained=none")):
        wanted = [key for key in own if key.startswith(prefix)]
        unfit = [key for key in wanted if key not in usable]
        if unfit:
            raise ConfigError(
                f"model.pretrained: {model.pretrained!r} fits only {len(wanted) - len(unfit)} of the {len(wanted)} "
                f"{model.backbone} {part} weights (not {unfit[0]}, ...); use weights of a whole {model.backbone} "
                f"model, {fix}"
            )
    net.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))
