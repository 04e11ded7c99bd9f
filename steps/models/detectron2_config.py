"""Our ModelConfig/TrainConfig as a detectron2 config (`get_cfg()` + Base-RCNN-FPN, set in code).

The Base-RCNN-FPN settings are written out here rather than read from detectron2's model-zoo
YAML files, which a source checkout or an installed wheel may lack.
"""

from __future__ import annotations

from pathlib import Path

from detectron2.config import CfgNode, get_cfg

from steps.config import Config, ModelConfig
from steps.errors import ConfigError
from steps.models.train_settings import step_milestones, train_min_sizes

DEPTHS = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101}
BACKBONES = tuple(DEPTHS)
# detectron2's model zoo: ImageNet backbones (MSRA, caffe-style BGR input) and COCO Mask R-CNN 3x.
ZOO = "detectron2://"
IMAGENET_WEIGHTS = {
    "resnet50": ZOO + "ImageNetPretrained/MSRA/R-50.pkl",
    "resnet101": ZOO + "ImageNetPretrained/MSRA/R-101.pkl",
}
COCO_WEIGHTS = {
    "resnet50": ZOO + "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/137849600/model_final_f10217.pkl",
    "resnet101": ZOO + "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x/138205316/model_final_a3ec72.pkl",
}


def check_model_config(model: ModelConfig) -> None:
    """Reject what the detectron2 backend cannot build or start from, before any work starts."""
    if model.backbone not in BACKBONES:
        raise ConfigError(
            f"model.backbone: {model.backbone!r} is not a detectron2 backbone (known: {', '.join(BACKBONES)}); "
            "mobilenet_v3_large needs model.backend=torchvision"
        )
    table = {"imagenet": IMAGENET_WEIGHTS, "coco": COCO_WEIGHTS}.get(model.pretrained)
    if table is not None and model.backbone not in table:
        raise ConfigError(
            f"model.pretrained: detectron2 has {model.pretrained} weights for {', '.join(table)} only, "
            f"not {model.backbone!r}; use pretrained=none, a weights file, or another backbone"
        )
    # URLs detectron2's checkpointer can fetch; anything else must be a file here.
    if model.pretrained in ("none", "imagenet", "coco") or model.pretrained.startswith(("http://", "https://", ZOO)):
        return
    if not Path(model.pretrained).is_file():
        raise ConfigError(
            f"model.pretrained: {model.pretrained!r} is not none/imagenet/coco, an http(s):// or detectron2:// URL, "
            "or an existing file"
        )


def initial_weights(model: ModelConfig) -> str:
    """What `MODEL.WEIGHTS` loads before training: '' (random init), a zoo URL, a file or URL."""
    if model.pretrained == "none":
        return ""
    if model.pretrained == "imagenet":
        return IMAGENET_WEIGHTS[model.backbone]
    if model.pretrained == "coco":
        return COCO_WEIGHTS[model.backbone]
    return model.pretrained


def build_cfg(config: Config, num_classes: int, device: str, out_dir: Path | None = None) -> CfgNode:
    """The detectron2 config for Mask R-CNN R-FPN from ours (frozen)."""
    m, t = config.model, config.train
    cfg = get_cfg()
    _base_rcnn_fpn(cfg)
    scratch = m.pretrained == "none"
    cfg.MODEL.DEVICE = device
    cfg.MODEL.WEIGHTS = initial_weights(m)
    cfg.MODEL.MASK_ON = True
    cfg.MODEL.RESNETS.DEPTH = DEPTHS[m.backbone]
    # BasicBlock ResNets (18/34) have 64-channel res2 outputs.
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64 if DEPTHS[m.backbone] < 50 else 256
    # From scratch every layer trains with real BatchNorm (nothing to freeze); from pretrained
    # weights BatchNorm stays frozen and the stem + res2 stay fixed (detectron2's recipe).
    cfg.MODEL.RESNETS.NORM = ("SyncBN" if t.gpus > 1 else "BN") if scratch else "FrozenBN"
    cfg.MODEL.BACKBONE.FREEZE_AT = 0 if scratch else 2
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = num_classes
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = m.roi_batch_size_per_image
    if m.anchor_sizes:
        cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[size] for size in m.anchor_sizes]
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = m.rpn_proposals_test
    cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST = m.box_nms_thresh
    cfg.MODEL.FPN.OUT_CHANNELS = m.fpn_channels
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = m.mask_head_channels or m.fpn_channels
    if m.roi_sampling_ratio is not None:
        cfg.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = m.roi_sampling_ratio
        cfg.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = m.roi_sampling_ratio
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 4 * m.fpn_channels

    cfg.INPUT.MIN_SIZE_TRAIN = train_min_sizes(m)
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
    cfg.INPUT.MAX_SIZE_TRAIN = m.max_size
    cfg.INPUT.MIN_SIZE_TEST = m.min_size
    cfg.INPUT.MAX_SIZE_TEST = m.max_size
    cfg.INPUT.RANDOM_FLIP = "horizontal" if t.hflip > 0 else "none"
    # Bitmasks accept polygon and RLE segmentations alike and crop on the GPU.
    cfg.INPUT.MASK_FORMAT = "bitmask"

    cfg.SOLVER.IMS_PER_BATCH = t.batch_size
    cfg.SOLVER.BASE_LR = t.lr
    cfg.SOLVER.MOMENTUM = t.momentum
    cfg.SOLVER.WEIGHT_DECAY = t.weight_decay
    # No weight decay on norm layers (detectron2's default) nor on biases, as the torchvision backend.
    cfg.SOLVER.WEIGHT_DECAY_NORM = 0.0
    cfg.SOLVER.WEIGHT_DECAY_BIAS = 0.0
    cfg.SOLVER.MAX_ITER = t.iterations
    cfg.SOLVER.WARMUP_ITERS = t.warmup_iters
    cfg.SOLVER.WARMUP_FACTOR = 0.001
    cfg.SOLVER.WARMUP_METHOD = "linear"
    cfg.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR" if t.lr_schedule == "step" else "WarmupCosineLR"
    # fvcore wants milestones strictly ascending and inside the run; tiny runs may round some away.
    cfg.SOLVER.STEPS = tuple(sorted({s for s in step_milestones(t) if 0 < s < t.iterations}))
    cfg.SOLVER.GAMMA = 0.1
    cfg.SOLVER.CHECKPOINT_PERIOD = t.checkpoint_period
    cfg.SOLVER.AMP.ENABLED = t.amp and device.startswith("cuda")
    # Clipping of the total gradient norm is a hook (detectron2's own option clips per parameter).
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = False
    cfg.DATALOADER.NUM_WORKERS = t.num_workers
    cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True
    cfg.SEED = t.seed
    cfg.OUTPUT_DIR = str(out_dir or "")
    cfg.freeze()
    return cfg


def _base_rcnn_fpn(cfg: CfgNode) -> None:
    """detectron2's configs/Base-RCNN-FPN.yaml, minus datasets and solver."""
    cfg.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
    cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64], [128], [256], [512]]  # one size per level
    cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
    cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
    cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN = 2000
    cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = 1000
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = 1000
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 1000
    cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
    cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
    cfg.MODEL.ROI_MASK_HEAD.NAME = "MaskRCNNConvUpsampleHead"
    cfg.MODEL.ROI_MASK_HEAD.NUM_CONV = 4
    cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
