"""Our COCO train split as a registered detectron2 dataset and its training data loader."""

from __future__ import annotations

import uuid

from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_train_loader, get_detection_dataset_dicts
from detectron2.data import transforms as T
from detectron2.data.dataset_mapper import DatasetMapper
from detectron2.data.datasets import register_coco_instances
from torch.utils.data import DataLoader

from steps.models.coco_dataset import CocoSplit
from steps.models.sampling import IndexSampler, ResumableSampler


def register_split(split: CocoSplit) -> str:
    """Register `split` under a name of its own (catalog names are process-global and never reused)."""
    name = f"trainyard_{split.path.stem}_{uuid.uuid4().hex[:8]}"
    # file_name is relative to images/ (what record writes) or, in older datasets, to the folder itself.
    first = split.images[0]["file_name"]
    image_root = split.image_dir if (split.image_dir / first).is_file() else split.path.parent
    register_coco_instances(name, {}, str(split.path), str(image_root))
    return name


def unregister(name: str) -> None:
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def build_train_loader(cfg: CfgNode, name: str, hflip: float, start_sample: int, rank: int, world: int) -> DataLoader:
    """detectron2's train loader over `name`, in our resumable sample order (sharded per process)."""
    dicts = get_detection_dataset_dicts([name], filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
    augmentations: list[T.Augmentation] = [
        T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING)
    ]
    if hflip > 0:
        augmentations.append(T.RandomFlip(prob=hflip, horizontal=True, vertical=False))
    mapper = DatasetMapper(
        is_train=True,
        augmentations=augmentations,
        image_format=cfg.INPUT.FORMAT,
        use_instance_mask=True,
        instance_mask_format=cfg.INPUT.MASK_FORMAT,
    )
    sampler = IndexSampler(ResumableSampler(len(dicts), cfg.SEED, start_sample, rank, world))
    return build_detection_train_loader(
        dicts,
        mapper=mapper,
        sampler=sampler,
        total_batch_size=cfg.SOLVER.IMS_PER_BATCH,
        aspect_ratio_grouping=cfg.DATALOADER.ASPECT_RATIO_GROUPING,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
    )
