"""The one typed pipeline configuration.

Defaults are commented here; `configs/*.yaml` override some of them; `--set key=value` overrides
any single value per run. Every step saves the resolved config next to its outputs.
"""

from __future__ import annotations

import difflib
import shlex
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from steps import safe_yaml, storage
from steps.confine import relative_folder
from steps.db import URL_ENV
from steps.errors import ConfigError, excerpt
from steps.labels import clean_label
from steps.redact import redact_data


class _Section(BaseModel):
    # Unknown keys are errors: a misspelled setting must never be silently ignored. So are
    # infinities and NaN (`train.lr=.inf` would train nothing and say nothing).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _check_location(value: str) -> str:
    try:
        return storage.check_location(value)
    except ConfigError:
        raise ValueError("expected gs://BUCKET or gs://BUCKET/PREFIX, or a local folder") from None


class DatasetConfig(_Section):
    # Git URL or local path of the dataset repo (labelme annotations + training datasets, DVC-tracked).
    repo: str = ""
    # Git tag of the annotation version to record; empty: the newest `annotations/*` tag.
    annotation_version: str = ""
    # Folder (in the dataset repo) holding the labelme JSON + image files.
    annotations_dir: str = "annotations"
    # Folder (in the dataset repo) the COCO training dataset is written to and `dvc add`ed.
    dataset_dir: str = "dataset"
    # Category names in id order; empty: `<annotations_dir>/labels.txt` when the annotation
    # version has one, else every label found, sorted. Labels are compared in Unicode NFC.
    labels: list[str] = Field(default_factory=list)
    # Share of images held out for checkpoint selection (val) and for the final test report (test).
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    # Seed of the deterministic train/val/test split.
    split_seed: int = 0
    # A labelme file that fails a check: `fail` records nothing; `skip` records the others and lists
    # the skipped files with their reason (report.json in the dataset, and the database).
    on_invalid: Literal["fail", "skip"] = "fail"
    # A labelme file with more objects than this is invalid (each is a full-image mask in training:
    # 100,000 of them would ask for ~100 GB per image). COCO's images hold at most ~100.
    max_instances_per_image: int = Field(1000, gt=0)

    @field_validator("labels")
    @classmethod
    def _clean_labels(cls, labels: list[str]) -> list[str]:
        return [clean_label(label) for label in labels]

    @field_validator("annotations_dir", "dataset_dir")
    @classmethod
    def _inside_repo(cls, value: str) -> str:
        # Record reads the one and replaces the other as a whole: outside the checkout that would be
        # a folder of the host (dataset_dir=/tmp/x would delete /tmp/x).
        return relative_folder(value)


class DatabaseConfig(_Section):
    # The database is a deployment's, and its URL a secret: it comes only from the environment,
    # TRAINYARD_DATABASE_URL (on a cluster from the trainyard-database Secret), as
    # `sqlite:///path.db` or `postgresql://user:password@host:5432/db`. Config files and overrides
    # may not set it (they travel in workflow parameters and logs); this is the fallback when the
    # variable is unset: a SQLite file in the working folder (`trainyard run --local` puts it in
    # the runs folder). Saved configs leave it out.
    url: str = "sqlite:///trainyard.sqlite"


class ModelConfig(_Section):
    # `torchvision` installs anywhere; `detectron2` needs detectron2 importable.
    backend: Literal["torchvision", "detectron2"] = "torchvision"
    # Backbone of Mask R-CNN (with FPN): resnet18/34/50/101 on both backends, mobilenet_v3_large
    # on torchvision only.
    backbone: Literal["resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v3_large"] = "resnet50"
    # `none` trains from scratch; `imagenet`/`coco` download the backend's weights; or a file/URI.
    pretrained: str = "none"
    # Shorter / longer image side after resizing (at inference, and in training unless
    # min_size_train is set).
    min_size: int = Field(800, gt=0)
    max_size: int = Field(1333, gt=0)
    # Multi-scale training: each training image's shorter side is picked at random from this list
    # (e.g. [640, 672, 704, 736, 768, 800], detectron2's R50-FPN recipe); empty: always min_size.
    min_size_train: list[int] = Field(default_factory=list)
    # RoIs sampled per training image for the box and mask heads (Mask R-CNN's 512). On a CPU the
    # heads dominate the step time, so small local configs lower it.
    roi_batch_size_per_image: int = Field(512, gt=0)
    # Anchor sizes in pixels, one per FPN level from the finest (5 for the ResNets); empty: the
    # backend's 32-512. Small objects (characters of a few pixels) need smaller anchors.
    anchor_sizes: list[int] = Field(default_factory=list, max_length=5)
    # Region proposals kept per image at inference (Mask R-CNN's 1000); fewer is faster on a CPU.
    rpn_proposals_test: int = Field(1000, gt=0)
    # Detections of one class overlapping more than this (box IoU) are suppressed at inference
    # (Mask R-CNN's 0.5). Lower it when objects of a class never overlap, e.g. plates.
    box_nms_thresh: float = Field(0.5, gt=0, le=1)
    # Width of the FPN, the RPN head and the mask head's convolutions (Mask R-CNN's 256); the box
    # head's two fully connected layers are 4x as wide (1024). The heads cost more than a
    # ResNet-18 body on a CPU: 128 halves the demo's training step (scripts/bench.py).
    fpn_channels: int = Field(256, gt=0, le=1024)
    # Width of the mask head's four convolutions; 0: fpn_channels. They run on every positive RoI
    # at 14x14, the largest share of a training step on a CPU at 256: a narrow mask head makes the
    # step cheaper without narrowing the features that classify (docs/demo.md).
    mask_head_channels: int = Field(0, ge=0, le=1024)
    # Points sampled per RoIAlign bin along each side, 0: adaptive; empty (null): the backend's own
    # (torchvision 2, detectron2 0). torchvision's RoIAlign backward pass runs on one core: 1 makes
    # it about 2.5x cheaper, and a bin of a small object covers about one feature cell anyway.
    roi_sampling_ratio: int | None = Field(None, ge=0, le=8)

    @field_validator("anchor_sizes")
    @classmethod
    def _five_levels(cls, sizes: list[int]) -> list[int]:
        if sizes and (len(sizes) != 5 or min(sizes) <= 0):
            raise ValueError("give 5 positive sizes, one per FPN level, e.g. [16, 32, 64, 128, 256]")
        return sizes


class TrainConfig(_Section):
    iterations: int = Field(2000, gt=0)
    # Images per iteration, over all GPUs (each of train.gpus takes an equal share).
    batch_size: int = Field(4, gt=0)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_iters: int = Field(100, ge=0)
    # Learning rate after warmup: `cosine` decays to 0 at the last iteration; `step` divides it by
    # 10 at each of lr_steps.
    lr_schedule: Literal["cosine", "step"] = "cosine"
    # Step schedule milestones as fractions of train.iterations, ascending, each in (0, 1).
    lr_steps: list[float] = Field(default_factory=lambda: [2 / 3, 8 / 9])
    # Clip the total L2 norm of the gradients to this before each update; 0 turns clipping off.
    clip_grad_norm: float = Field(10.0, ge=0)
    # Mixed precision (float16 autocast + gradient scaling) when training on CUDA; no effect on CPU.
    amp: bool = True
    # GPUs on one node: more than 1 trains data-parallel, one process per GPU (torchrun-style DDP
    # or detectron2's launch). The train step's pod must request as many GPUs.
    gpus: int = Field(1, gt=0)
    # Durable copy of the checkpoints, a folder or gs://bucket/prefix: every checkpoint is uploaded
    # as it is written, and a run that starts without them (a retried pod) downloads them and resumes.
    # `python -m steps.train --checkpoint-uri` sets it. Empty: checkpoints stay in the output folder.
    checkpoint_uri: str = ""
    _checkpoint_uri = field_validator("checkpoint_uri")(_check_location)
    # Write a checkpoint every this many iterations (and at the end).
    checkpoint_period: int = Field(500, gt=0)
    # Log losses every this many iterations.
    log_period: int = Field(20, gt=0)
    # Horizontal-flip probability for augmentation (plates read left to right: keep it 0 for EIR).
    hflip: float = Field(0.0, ge=0, le=1)
    seed: int = 0
    # `auto` uses CUDA when available.
    device: str = "auto"
    # On CUDA, use deterministic kernels wherever PyTorch has them (slower). CPU training is
    # deterministic anyway; on a GPU Mask R-CNN keeps ops without a deterministic kernel (they
    # warn): docs/metrics.md#determinism.
    deterministic: bool = False
    num_workers: int = Field(2, ge=0)


class EvaluateConfig(_Section):
    # Metric that selects the best checkpoint and decides promotion, e.g. `segm/AP`, `bbox/AP50`,
    # `dv_mAP`, `EIR`. The default is one every dataset has and that does not saturate. A list is
    # an order of preference: the first that is a metric of the dataset applies, so
    # `[segm/AP50-plate, segm/AP]` selects by plates where there are plates and by segm/AP elsewhere.
    select_key: str | list[str] = "segm/AP"

    @field_validator("select_key")
    @classmethod
    def _preferences(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("an empty list; give a key, or keys in order of preference, e.g. [segm/AP50-plate, segm/AP]")
        return value
    select_mode: Literal["max", "min"] = "max"
    # Checkpoints whose select_key ties (a key saturating at 1.0) are told apart by this metric,
    # compared the same way; then the later checkpoint wins, then the lower sweep branch number.
    tie_break_key: str = "segm/AP"
    # Fan-out evaluation: checkpoints scored per pod (train lists them in groups of this size; the
    # workflow runs one evaluate pod per group, `steps.evaluate.parallelism` of them at once).
    checkpoints_per_pod: int = Field(1, ge=1)
    # Predictions below this score are dropped before COCO evaluation.
    score_threshold: float = Field(0.05, ge=0, le=1)
    # Label of the plate category (for dv_mAP slicing and EIR reading).
    plate_label: str = "plate"
    _plate_label = field_validator("plate_label")(clean_label)
    # Class groups the reports and the run summary lead with: group name -> its classes, where
    # "*" stands for every class no other group names (only on a dataset that has one of those);
    # a group of several classes shows their mean. {} (the default): per-class tables only. The
    # plate configs set {plate: [plate], characters: ["*"]}.
    class_groups: dict[str, list[str]] = Field(default_factory=dict)
    # dv_mAP: number of slices along the plate, the whole-mask IoU a match needs and the IoU each
    # slice must reach. The original project's settings: dv_mask_iou=0.6, dv_iou=0.6 (docs/metrics.md).
    dv_slices: int = Field(3, gt=0)
    dv_mask_iou: float = Field(0.5, gt=0, le=1)
    dv_iou: float = Field(0.5, gt=0, le=1)
    # EIR and the test report's readings: plates and characters are read only at this score or
    # above (one threshold: a reading the report shows is one EIR scored). (`eir_char_score`, its
    # former name, is still accepted.)
    read_score: float = Field(0.5, ge=0, le=1)
    # EIR: of two characters (any classes) whose boxes overlap by more than this IoU inside a plate,
    # only the higher-scoring one is read. 1 turns the suppression off.
    char_nms_iou: float = Field(0.5, gt=0, le=1)
    # Images per model call when predicting the val split (float16 autocast on CUDA); the next
    # images are decoded while the model runs. Lower it when a GPU runs out of memory.
    batch_size: int = Field(4, gt=0, le=256)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return _rename(data, "evaluate", {"eir_char_score": "read_score"})

    @property
    def eir_char_score(self) -> float:
        """The former name of read_score (kept for callers written before the rename)."""
        return self.read_score


class PromotionConfig(_Section):
    # Model registry: a folder or `gs://bucket/prefix`.
    registry: str = "registry"
    _registry = field_validator("registry")(_check_location)
    # A challenger is promoted only when it beats production's select_key by more than this
    # (`margin`, its former name, is still accepted) ...
    min_gain: float = 0.0
    # The lowest min_confidence (below) a run may ask for. Set only in a config file, never by a
    # run's overrides: the cluster config sets it, so that no run promotes on an unconfirmed gain.
    min_confidence_floor: float = Field(0.0, ge=0, le=1)
    # ... and a paired bootstrap over the validation images says it is better with at least this
    # probability (0 turns the test off). docs/metrics.md#promotion.
    min_confidence: float = Field(0.9, ge=0, le=1)
    # Bootstrap resamples of the validation images, at least: the test draws enough to resolve its
    # level (20 / (1 - required confidence), e.g. 400 at 0.95, 2,400 at 0.9917), at most
    # max_bootstrap_samples. Each costs two evaluations of the select_key's metric family. A test
    # whose level max_bootstrap_samples cannot resolve at all is not run: the champion's reign on
    # that validation split has spent its tests (docs/metrics.md#promotion).
    bootstrap_samples: int = Field(200, ge=1, le=100000)
    max_bootstrap_samples: int = Field(20000, ge=1, le=1000000)
    # Below this many validation images, or objects the select_key scores (its class's for a
    # per-class key, plates for EIR, all for the others), a comparison is refused as "not enough
    # evidence": measured by scripts/promotion_power.py, docs/metrics.md#promotion.
    min_images: int = Field(50, ge=0)
    min_objects: int = Field(50, ge=0)
    # The first model (no production yet) is promoted only when its select_key is above this
    # (below, with select_mode=min): a model that scores nothing never becomes production.
    # null promotes any first model whose score is a number.
    min_first_score: float | None = 0.0

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return _rename(data, "promotion", {"margin": "min_gain"})

    @field_validator("max_bootstrap_samples")
    @classmethod
    def _above_minimum(cls, value: int, info: ValidationInfo) -> int:
        least = info.data.get("bootstrap_samples", 1)
        if value < least:
            raise ValueError(f"below promotion.bootstrap_samples ({least}); raise it or lower that")
        return value

    @field_validator("min_confidence")
    @classmethod
    def _above_floor(cls, value: float, info: ValidationInfo) -> float:
        floor = info.data.get("min_confidence_floor", 0.0)
        if value < floor:
            raise ValueError(f"below this config's promotion.min_confidence_floor {floor}: a promotion must be "
                             "confirmed at least that surely here")
        return value


def _rename(data: Any, section: str, renamed: dict[str, str]) -> Any:
    """Accept a setting under its former name; both names at once is an error."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for old, new in renamed.items():
        if old in data:
            if new in data:
                raise ValueError(f"{section}.{old} is the former name of {section}.{new}; set only {new}")
            data[new] = data.pop(old)
    return data


class TestConfig(_Section):
    # Predictions below this score are not drawn (masks, boxes, labels); plates are read at
    # evaluate.read_score, as EIR reads them.
    score_threshold: float = Field(0.5, ge=0, le=1)
    # At most this many test images are drawn into the report.
    max_images: int = Field(50, gt=0)
    # Images per model call when predicting the test split (as evaluate.batch_size).
    batch_size: int = Field(4, gt=0, le=256)


class Config(_Section):
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    test: TestConfig = Field(default_factory=TestConfig)


# Settings that guard what a run's overrides may do: a config file sets them, an override never.
FILE_ONLY = ("promotion.min_confidence_floor",)


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key {excerpt(where)}{_suggestion(error['loc'])}"
    # The bad value is quoted short (it may be huge) and redacted (it may be the database URL).
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')} (got {excerpt(error.get('input'))})"


def _suggestion(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return ""
        model = field.annotation
    known = sorted(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (known: {', '.join(known)})"


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def split_overrides(text: str, what: str = "--set-list") -> list[str]:
    """The `key=value` items of one shell-quoted string (`--set-list`, the `overrides` parameter)."""
    try:
        return shlex.split(text)
    except ValueError as exc:  # e.g. "No closing quotation"
        raise ConfigError(
            f"{what} {excerpt(text)}: {exc}; quote each value whole, e.g. 'dataset.labels=[a, b]'"
        ) from None


def parse_overrides(items: list[str], set_list: str = "") -> list[tuple[str, Any]]:
    """Turn `key=value` strings into (key, YAML-parsed value) pairs; `database.url` is refused."""
    pairs = []
    for item in [*items, *split_overrides(set_list)]:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {excerpt(item)}: expected KEY=VALUE, e.g. train.iterations=50")
        try:
            value = safe_yaml.load(raw) if raw.strip() else ""
        except safe_yaml.YAMLTooLarge as exc:
            raise ConfigError(f"--set {excerpt(key.strip())}: {exc}") from None
        except yaml.YAMLError:
            value = raw
        _refuse_database_url({}, key.strip(), value, f"override {excerpt(key.strip())}")
        pairs.append((key.strip(), value))
    return pairs


def check_overrides(text: str, what: str) -> None:
    """Refuse what `load_config` would refuse in a shell-quoted overrides string (quoting, YAML
    bombs, database.url) without loading a config: before a run is submitted with it."""
    parse_overrides(split_overrides(text, what))


def _refuse_database_url(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    """The database URL is a secret: never taken from a config file or an override, which travel in
    workflow parameters, the Workflow object and logs. The value is never quoted."""
    probe: dict[str, Any] = {}
    _set_dotted(probe, key, value) if key else probe.update(data)
    section = probe.get("database")
    if isinstance(section, dict) and "url" in section:
        raise ConfigError(
            f"{where}: database.url is a secret and is not read from config files or overrides (they travel in "
            f"workflow parameters and logs); remove it and set {URL_ENV} (locally) or the trainyard-database "
            "Secret (on a cluster)"
        )


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, set_list: str = "") -> Config:
    """Defaults, then the YAML file, then each override; errors name the file and the key."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path:
        source = str(path)
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"{file}: config file not found")
        try:
            text = file.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read ({exc.strerror or exc})") from None
        try:
            loaded = safe_yaml.load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {str(exc).splitlines()[0][:200]}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file}: expected a mapping of sections (dataset:, train:, ...)")
        _refuse_database_url(loaded, "", None, str(file))
        data = loaded
    for key, value in parse_overrides(overrides or [], set_list):
        if key in FILE_ONLY:
            raise ConfigError(f"--set {key}: set only in a config file; a run's overrides may not lower it")
        _set_dotted(data, key, value)
        source = f"{source} + --set"
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None


def dump_config(config: Config) -> dict[str, Any]:
    """The config as plain data for anything persisted (config.yaml, checkpoints, the registry).

    Without the database URL (the deployment's secret, never a config value: the file loads again
    as a config) and with any other URL's credentials redacted (a dataset repo's token).
    """
    data = config.model_dump(mode="json")
    del data["database"]["url"]
    return redact_data(data)


def save_config(config: Config, path: str | Path) -> Path:
    """Write the resolved config (what actually ran) as YAML, without secrets."""
    out = Path(path)
    storage.write_text(str(out), yaml.safe_dump(dump_config(config), sort_keys=False))
    return out
