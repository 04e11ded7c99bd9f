"""The torchvision Mask R-CNN backend: training outputs, resume, preemption, fallback, prediction.

A tiny synthetic COCO dataset (6 images of drawn rectangles and triangles), resnet18 at ~128 px and a
handful of iterations on the CPU: enough to exercise the real training loop end to end.
"""

from __future__ import annotations

import json
import shutil
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision

from steps.config import Config, ModelConfig, TrainConfig, load_config
from steps.errors import ConfigError, InputError
from steps.masks import decode
from steps.models import TrainSummary, get_backend
from steps.models.checkpoints import (
    CheckpointWarning,
    check_resumable,
    list_checkpoints,
    read_checkpoint,
    save_checkpoint,
)
from steps.models.coco_dataset import CocoSegmentationDataset, load_image, read_split, to_model_input
from steps.models.sampling import IndexSampler, ResumableSampler
from steps.models.schedule import lr_factor
from steps.models.torchvision_model import build_model, load_initial_weights
from steps.models.train_settings import train_min_sizes, world_size
from tests.tiny_coco import (
    CATEGORIES,
    IMAGE_H,
    IMAGE_W,
    checkpoint_iterations,
    make_coco_dataset,
    metric_iterations,
    train_and_sigterm,
)

# Few sampled RoIs keep the box and mask heads cheap on a 2-core CPU.
TINY_MODEL: dict[str, Any] = {"backend": "torchvision", "backbone": "resnet18", "pretrained": "none", "min_size": 128,
                              "max_size": 160, "roi_batch_size_per_image": 32}


def tiny_config(**train: Any) -> Config:
    settings = {
        "iterations": 4,
        "batch_size": 2,
        "checkpoint_period": 2,
        "log_period": 1,
        "warmup_iters": 2,
        "lr": 0.005,
        "num_workers": 0,
        "device": "cpu",
        "hflip": 0.5,
        **train,
    }
    return Config.model_validate({"model": TINY_MODEL, "train": settings})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_coco_dataset(tmp_path_factory.mktemp("coco") / "dataset")


@pytest.fixture(scope="module")
def first_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainSummary]:
    """4 iterations, checkpoints at 2 and 4: shared read-only; tests that change it copy it."""
    out = tmp_path_factory.mktemp("run") / "out"
    return out, get_backend("torchvision").train(dataset, out, tiny_config())


@pytest.fixture
def run_copy(first_run: tuple[Path, TrainSummary], tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(first_run[0], out)
    return out


def test_short_run_writes_checkpoints_metrics_tensorboard_and_config(first_run: tuple[Path, TrainSummary]) -> None:
    out, summary = first_run
    assert summary.iterations == 4 and summary.start_iteration == 0
    assert summary.final_loss is not None and np.isfinite(summary.final_loss)
    assert [p.name for p in summary.checkpoints] == ["model_0000002.pth", "model_0000004.pth"]
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")], "temp files left behind"

    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["iteration"] for m in metrics] == [1, 2, 3, 4]
    assert {"loss", "lr", "seconds", "loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"} <= set(metrics[0])
    assert metrics[-1]["loss"] == pytest.approx(sum(v for k, v in metrics[-1].items() if k.startswith("loss_")))
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert load_config(out / "config.yaml") == tiny_config()

    state = read_checkpoint(out / "checkpoints" / "model_0000004.pth")
    assert state["iteration"] == 4 and state["backend"] == "torchvision"
    assert state["categories"] == CATEGORIES
    assert state["config"]["model"]["backbone"] == "resnet18"
    assert {"model", "optimizer", "scheduler", "rng", "scaler"} <= set(state)


def test_resume_continues_to_the_new_total(run_copy: Path, dataset: Path) -> None:
    summary = get_backend("torchvision").train(dataset, run_copy, tiny_config(iterations=6))
    assert summary.start_iteration == 4 and summary.iterations == 6
    assert metric_iterations(run_copy) == [1, 2, 3, 4, 5, 6]
    assert checkpoint_iterations(run_copy) == [2, 4, 6]
    assert read_checkpoint(run_copy / "checkpoints" / "model_0000006.pth")["iteration"] == 6
    # The longer total is kept in the checkpoints' history (and so in a registered model's lineage).
    assert read_checkpoint(run_copy / "checkpoints" / "model_0000006.pth")["history"] == [
        {"iteration": 4, "changed": {"train.iterations": {"from": 4, "to": 6}}}]
    assert read_checkpoint(run_copy / "checkpoints" / "model_0000004.pth")["history"] == []


def _tamper(state: dict[str, Any], case: str) -> None:
    if case == "iteration a string":
        state["iteration"] = "4"
    elif case == "iteration 10^12":
        state["iteration"] = 10**12
    elif case == "iteration negative":
        state["iteration"] = -5
    elif case == "rng state":
        state["rng"] = {**state["rng"], "numpy": {"bit_generator": "MT19937", "state": {"key": [1, 2], "pos": 0}}}
    elif case == "torch rng state":
        state["rng"] = {**state["rng"], "torch": torch.zeros(3, dtype=torch.uint8)}
    elif case == "empty model":
        state["model"] = {}
    elif case == "optimizer without param_groups":
        state["optimizer"] = {"state": {}}
    elif case == "categories not a list":
        state["categories"] = "plate,char"
    elif case == "weights of another model":
        state["model"] = {"backbone.body.conv1.weight": torch.ones(3, 3)}


@pytest.fixture(scope="module")
def written(first_run: tuple[Path, TrainSummary]) -> dict[str, Any]:
    return read_checkpoint(first_run[0] / "checkpoints" / "model_0000004.pth")


@pytest.mark.parametrize(("case", "message"), [
    ("iteration a string", "iteration '4' is not a whole number"),
    ("iteration 10^12", "it claims iteration 1000000000000, beyond the 4 its own run trains to"),
    ("iteration negative", "iteration -5 is not a completed iteration"),
    ("rng state", "its RNG state cannot be restored"),
    ("torch rng state", "its RNG state cannot be restored"),
    ("empty model", "it holds no model weights"),
    ("optimizer without param_groups", "its optimizer state has no param_groups"),
    ("categories not a list", r"its categories are not a list of \{id, name\}"),
])
def test_a_checkpoint_with_malformed_fields_is_one_clear_error(written: dict[str, Any], case: str, message: str) -> None:
    state = {**written}
    _tamper(state, case)
    path = Path("out/checkpoints/model_0000004.pth")
    with pytest.raises(InputError, match=rf"model_0000004.pth: {message}") as raised:
        check_resumable(state, "torchvision", tiny_config(iterations=6), CATEGORIES, path.parent, path)
    assert "\n" not in str(raised.value) and "use a new output folder" in str(raised.value)


def test_a_checkpoint_renamed_to_the_iteration_it_claims_is_still_refused(written: dict[str, Any]) -> None:
    # The name agrees, but the run it came from trains to 4: 10^12 would skip training silently.
    config, folder = tiny_config(iterations=6), Path("out/checkpoints")
    with pytest.raises(InputError, match="model_1000000000000.pth: it claims iteration 1000000000000, beyond the 4"):
        check_resumable({**written, "iteration": 10**12}, "torchvision", config, CATEGORIES, folder,
                        folder / "model_1000000000000.pth")
    with pytest.raises(InputError, match="model_0000005.pth: it claims iteration 3 but its file is named"):
        check_resumable({**written, "iteration": 3}, "torchvision", config, CATEGORIES, folder,
                        folder / "model_0000005.pth")


@pytest.mark.parametrize(("case", "message"), [
    ("iteration negative", "iteration -5 is not a completed iteration"),
    ("weights of another model", "its model state does not fit this run"),
])
def test_training_stops_at_a_malformed_checkpoint_before_any_work(run_copy: Path, dataset: Path, case: str,
                                                                   message: str) -> None:
    path = run_copy / "checkpoints" / "model_0000004.pth"
    state = read_checkpoint(path)
    _tamper(state, case)
    save_checkpoint(state, path)
    with pytest.raises(InputError, match=rf"model_0000004.pth: {message}") as raised:
        get_backend("torchvision").train(dataset, run_copy, tiny_config(iterations=6))
    assert "\n" not in str(raised.value)
    assert checkpoint_iterations(run_copy) == [2, 4]  # nothing trained, no model_-000004.pth
    assert not list((run_copy / "checkpoints").glob("model_-*"))


def test_rerun_of_a_finished_run_does_nothing(run_copy: Path, dataset: Path) -> None:
    before = (run_copy / "checkpoints" / "model_0000004.pth").stat().st_mtime_ns
    summary = get_backend("torchvision").train(dataset, run_copy, tiny_config())
    assert summary.start_iteration == 4 and summary.final_loss is None
    assert (run_copy / "checkpoints" / "model_0000004.pth").stat().st_mtime_ns == before


def test_corrupted_latest_checkpoint_falls_back_to_the_previous_one(run_copy: Path, dataset: Path) -> None:
    latest = run_copy / "checkpoints" / "model_0000004.pth"
    with open(latest, "r+b") as handle:
        handle.truncate(latest.stat().st_size // 2)
    with pytest.warns(CheckpointWarning, match="model_0000004.pth"):
        summary = get_backend("torchvision").train(dataset, run_copy, tiny_config())
    assert summary.start_iteration == 2 and summary.iterations == 4
    assert metric_iterations(run_copy) == [1, 2, 3, 4]
    assert read_checkpoint(latest)["iteration"] == 4  # rewritten, readable again
    assert (run_copy / "checkpoints" / "model_0000004.pth.corrupt").is_file()


def test_sigterm_checkpoints_exits_143_and_the_rerun_resumes(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # Checkpoints only at the end: any earlier checkpoint must be the one SIGTERM wrote.
    config = tiny_config(iterations=4, checkpoint_period=100, batch_size=1)
    code, output, stopped = train_and_sigterm(config, dataset, out, after_line="iter 1/4")
    assert code == 143, output
    assert 1 <= stopped < 4
    assert checkpoint_iterations(out) == [stopped]

    summary = get_backend("torchvision").train(dataset, out, config)
    assert summary.start_iteration == stopped and summary.iterations == 4
    assert metric_iterations(out) == [1, 2, 3, 4]
    assert checkpoint_iterations(out) == [stopped, 4]


def test_predict_returns_coco_results_with_image_sized_masks(first_run: tuple[Path, TrainSummary], dataset: Path) -> None:
    predictor = get_backend("torchvision").load(first_run[1].checkpoints[-1], device="cpu")
    assert predictor.categories == CATEGORIES
    results = predictor.predict(dataset / "images" / "img0.png", image_id=7, score_threshold=0.0)
    assert results, "an untrained model still proposes boxes at threshold 0"
    for result in results:
        assert set(result) == {"image_id", "category_id", "bbox", "score", "segmentation"}
        assert result["image_id"] == 7 and result["category_id"] in (1, 2)
        x, y, w, h = result["bbox"]
        assert 0 <= x and 0 <= y and w >= 0 and h >= 0 and x + w <= IMAGE_W + 1e-3 and y + h <= IMAGE_H + 1e-3
        assert 0.0 <= result["score"] <= 1.0
        assert isinstance(result["segmentation"]["counts"], str)
        assert decode(result["segmentation"]).shape == (IMAGE_H, IMAGE_W)
    json.dumps(results)  # COCO results must serialise as they are
    cutoff = sorted(r["score"] for r in results)[len(results) // 2]
    assert all(r["score"] >= cutoff for r in predictor.predict(dataset / "images" / "img0.png", 7, cutoff))


def test_a_checkpoint_file_can_start_a_model_with_other_categories(first_run: tuple[Path, TrainSummary]) -> None:
    weights = first_run[1].checkpoints[-1]
    config = ModelConfig.model_validate({**TINY_MODEL, "pretrained": str(weights)})
    same = build_model(config, num_classes=3)
    assert load_initial_weights(same, config) == []
    trained = read_checkpoint(weights)["model"]
    assert torch.equal(same.state_dict()["backbone.body.layer4.1.conv2.weight"], trained["backbone.body.layer4.1.conv2.weight"])
    # Five classes: only the class-specific heads stay at their random start.
    missing = load_initial_weights(build_model(config, num_classes=5), config)
    assert {key.rsplit(".", 2)[0] for key in missing} == {"roi_heads.box_predictor", "roi_heads.mask_predictor"}


def test_unknown_backbone_is_a_config_error_before_any_work() -> None:
    # A choice in the config itself: refused when the config loads, before record runs.
    with pytest.raises(ConfigError, match="model.backbone: Input should be 'resnet18'.*got 'vgg16'"):
        load_config(None, ["model.backbone=vgg16"])


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"backbone": "resnet18", "pretrained": "coco"}, "COCO Mask R-CNN weights for resnet50 only"),
        ({"backbone": "resnet18", "pretrained": "/no/such/weights.pth"}, "model.pretrained"),
        ({"backbone": "resnet18", "min_size": 400, "max_size": 300}, "model.min_size"),
        ({"backbone": "resnet18", "min_size_train": [0, 800]}, r"model.min_size_train: \[0\]"),
        ({"backbone": "resnet18", "train": {"lr_steps": [0.5, 1.0]}}, "train.lr_steps"),
        ({"backbone": "resnet18", "train": {"gpus": 2, "device": "cpu"}}, "train.gpus is 2: that needs train.device auto or cuda"),
        ({"backbone": "resnet18", "train": {"device": "tpu"}}, "train.device"),
    ],
    ids=["coco-needs-resnet50", "missing-weights-file", "min-above-max", "resize-range", "lr-steps", "gpus-on-cpu", "device"],
)
def test_bad_settings_are_config_errors_before_any_work(model: dict[str, Any], message: str, dataset: Path, tmp_path: Path) -> None:
    train = model.pop("train", {})
    config = Config.model_validate({"model": model, "train": train})
    with pytest.raises(ConfigError, match=message):
        get_backend("torchvision").train(dataset, tmp_path / "out", config)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("gpus", "batch_size", "available", "expected"),
    [(1, 4, 0, 1), (2, 4, 2, 2), (4, 8, 8, 4), (2, 4, 1, "this node has 1 CUDA device"), (2, 3, 2, "does not split evenly")],
    ids=["one", "two-of-two", "four-of-eight", "more-than-present", "uneven-batch"],
)
def test_world_size_is_the_gpu_count_when_the_node_has_them(gpus: int, batch_size: int, available: int, expected: int | str) -> None:
    train = TrainConfig(gpus=gpus, batch_size=batch_size)
    if isinstance(expected, int):
        assert world_size(train, available) == expected
    else:
        with pytest.raises(ConfigError, match=expected):
            world_size(train, available)


def test_schedule_amp_and_resize_settings_are_honoured_on_cpu(dataset: Path, tmp_path: Path) -> None:
    config = tiny_config(iterations=1, lr_schedule="step", clip_grad_norm=0.0, amp=True)
    config.model.min_size_train = [96, 112]
    assert train_min_sizes(config.model) == (96, 112) and train_min_sizes(ModelConfig()) == (800,)
    summary = get_backend("torchvision").train(dataset, tmp_path / "out", config)
    state = read_checkpoint(summary.checkpoints[-1])
    assert state["scheduler"]["kind"] == "step" and state["scheduler"]["milestones"] == pytest.approx([2 / 3, 8 / 9])
    assert state["scaler"] == {}  # AMP is CUDA only: no scaler state on a CPU run
    assert load_config(tmp_path / "out" / "config.yaml").model.min_size_train == [96, 112]


def test_missing_dataset_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="train.json: not found"):
        get_backend("torchvision").train(tmp_path / "nowhere", tmp_path / "out", tiny_config())


def test_detectron2_backend_without_detectron2_says_how_to_get_it() -> None:
    try:
        import detectron2  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="built from source.*images/train"):
            get_backend("detectron2")
    else:
        pytest.skip("detectron2 is importable here")


def test_mobilenet_backbone_builds_and_runs() -> None:
    model = build_model(ModelConfig(backbone="mobilenet_v3_large", min_size=96, max_size=128), num_classes=3).eval()
    with torch.inference_mode():
        (output,) = model([torch.rand(3, 96, 128)])
    assert model.roi_heads.box_predictor.cls_score.out_features == 3
    assert output["masks"].shape[1:] == (1, 96, 128)


def test_hflip_mirrors_image_boxes_and_masks(dataset: Path) -> None:
    split = read_split(dataset)
    assert len(split.images) == 6  # the unannotated image is skipped
    plain, flipped = CocoSegmentationDataset(split, hflip=0.0)[(0, 1)], CocoSegmentationDataset(split, hflip=1.0)[(0, 1)]
    assert torch.equal(flipped[0], plain[0].flip(-1))
    assert torch.equal(flipped[1]["masks"], plain[1]["masks"].flip(-1))
    x1, y1, x2, y2 = plain[1]["boxes"][0].tolist()
    assert flipped[1]["boxes"][0].tolist() == [IMAGE_W - x2, y1, IMAGE_W - x1, y2]
    # the mask's columns match its box: COCO pixel [x1, x2) becomes [W - x2, W - x1)
    columns = flipped[1]["masks"][0].any(dim=0).nonzero().flatten()
    assert (columns.min().item(), columns.max().item() + 1) == (IMAGE_W - x2, IMAGE_W - x1)


def test_samples_travel_as_uint8_and_reach_the_model_as_the_same_floats(dataset: Path) -> None:
    # A quarter of the bytes through the loader's shared memory (and to a GPU); the model still
    # gets exactly the [0, 1] floats of image / 255.
    split = read_split(dataset)
    image, _target = CocoSegmentationDataset(split)[(0, 1)]
    assert image.dtype == torch.uint8
    pixels = np.asarray(load_image(split.image_dir / split.images[0]["file_name"]), dtype=np.float32)
    expected = torch.from_numpy(pixels / 255.0).permute(2, 0, 1)
    assert torch.equal(to_model_input(image, torch.device("cpu")), expected)


def test_lr_schedule_warms_up_linearly_then_decays() -> None:
    assert lr_factor(0, 100, 10) == pytest.approx(0.001)
    # halfway through warmup: 0.001 * 0.5 + 0.5, times the cosine at 5 % of the run
    assert lr_factor(5, 100, 10) == pytest.approx(0.5005 * 0.5 * (1 + np.cos(np.pi * 0.05)))
    assert lr_factor(50, 100, 0) == pytest.approx(0.5)
    assert lr_factor(100, 100, 0) == pytest.approx(0.0)
    assert [lr_factor(i, 90, 0, "step") for i in (59, 60, 79, 80)] == pytest.approx([1.0, 0.1, 0.1, 0.01])


def test_sampler_resumes_mid_epoch_with_the_same_order() -> None:
    fresh = list(islice(ResumableSampler(5, seed=3), 12))
    assert sorted(i for i, _ in fresh[:5]) == list(range(5)) and sorted(i for i, _ in fresh[5:10]) == list(range(5))
    assert list(islice(ResumableSampler(5, seed=3, start=7), 5)) == fresh[7:]
    assert fresh[:5] != list(islice(ResumableSampler(5, seed=4), 5))


def test_sampler_shards_split_one_stream_between_processes() -> None:
    whole = list(islice(ResumableSampler(5, seed=3, start=4), 12))
    shards = [list(islice(ResumableSampler(5, seed=3, start=4, rank=rank, world=3), 4)) for rank in range(3)]
    # sample numbers 4, 5, 6, ... go to ranks 1, 2, 0, 1, ...: interleaved back, they are the one stream
    interleaved = [shards[(4 + i) % 3][i // 3] for i in range(12)]
    assert interleaved == whole
    assert list(islice(IndexSampler(ResumableSampler(5, seed=3, start=4)), 12)) == [index for index, _ in whole]


def test_two_processes_stop_together_on_sigterm_and_the_run_resumes(dataset: Path, tmp_path: Path) -> None:
    """The multi-GPU path (DDP, sharded samples, rank 0 writes, SIGTERM forwarded to every worker)
    as two CPU processes over gloo; the pod's SIGTERM reaches only the launching process."""
    out = tmp_path / "out"
    config = tiny_config(iterations=4, checkpoint_period=100)
    code, output, stopped = train_and_sigterm(config, dataset, out, after_line="iter 1/4", processes=2)
    assert code == 143, output
    assert 1 <= stopped < 4 and checkpoint_iterations(out) == [stopped]
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1  # one writer: rank 0
    state = read_checkpoint(out / "checkpoints" / f"model_{stopped:07d}.pth")
    assert not any(key.startswith("module.") for key in state["model"])  # the model, not its DDP wrapper

    summary = get_backend("torchvision").train(dataset, out, config)  # resumed by a single process
    assert summary.start_iteration == stopped and summary.iterations == 4
    assert metric_iterations(out) == [1, 2, 3, 4]


def test_atomic_save_replaces_whole_files_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "model_0000001.pth"
    save_checkpoint({"model": {"w": torch.zeros(2)}}, path)
    save_checkpoint({"model": {"w": torch.ones(2)}}, path)
    assert torch.equal(read_checkpoint(path)["model"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["model_0000001.pth"]
    assert list_checkpoints(tmp_path) == [(1, path)]


def test_no_file_a_training_run_writes_holds_the_database_password(dataset: Path, tmp_path: Path) -> None:
    secret = "s3cr3t-Pw-4711"
    config = tiny_config(iterations=2, checkpoint_uri=str(tmp_path / "durable")).model_copy(
        update={"database": Config().database.model_copy(update={"url": f"postgresql://trainer:{secret}@db/trainyard"})}
    )
    out = tmp_path / "out"
    get_backend("torchvision").train(dataset, out, config)

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"config.yaml", "model_0000002.pth", "metrics.json"} <= {p.name for p in written}
    leaking = [p for p in written if secret.encode() in p.read_bytes()]
    assert leaking == [], "the database URL is a secret"
    # Saved without it (the database is the deployment's), so a saved config loads as a config again.
    assert "url" not in read_checkpoint(out / "checkpoints" / "model_0000002.pth")["config"]["database"]
    assert load_config(out / "config.yaml").train.iterations == 2


def test_anchor_sizes_and_inference_settings_reach_the_model() -> None:
    model = ModelConfig(backbone="resnet18", anchor_sizes=[16, 32, 64, 128, 256], rpn_proposals_test=300, box_nms_thresh=0.3)
    net = build_model(model, num_classes=3)
    assert net.rpn.anchor_generator.sizes == ((16,), (32,), (64,), (128,), (256,))
    assert net.rpn._post_nms_top_n["testing"] == 300 and net.roi_heads.nms_thresh == 0.3
    with pytest.raises(ConfigError, match="model.anchor_sizes: .*5 positive sizes"):
        load_config(None, ["model.anchor_sizes=[16,32]"])


def test_a_narrow_mask_head_and_roi_sampling_reach_the_model_and_defaults_keep_torchvisions() -> None:
    default = build_model(ModelConfig(backbone="resnet18", fpn_channels=256), num_classes=3)
    stock = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=3)
    # At the defaults the heads are torchvision's own: the same weight names and shapes, so
    # checkpoints written before these settings existed load as they are.
    heads = {k: v.shape for k, v in default.state_dict().items() if k.startswith("roi_heads.")}
    assert heads == {k: v.shape for k, v in stock.state_dict().items() if k.startswith("roi_heads.")}
    assert default.roi_heads.box_roi_pool.sampling_ratio == 2 == stock.roi_heads.box_roi_pool.sampling_ratio
    narrow = build_model(ModelConfig(backbone="resnet18", fpn_channels=128, mask_head_channels=64, roi_sampling_ratio=1),
                         num_classes=3)
    assert narrow.roi_heads.mask_head[0][0].weight.shape == (64, 128, 3, 3)  # FPN width in, mask width out
    assert narrow.roi_heads.mask_predictor.mask_fcn_logits.weight.shape == (3, 64, 1, 1)
    assert narrow.roi_heads.box_head.fc7.out_features == 512  # the box head stays 4x the FPN's width
    assert narrow.roi_heads.box_roi_pool.sampling_ratio == 1 == narrow.roi_heads.mask_roi_pool.sampling_ratio
    narrow.eval()
    with torch.no_grad():
        (out,) = narrow([torch.rand(3, 96, 128)])
    assert out["masks"].shape[1:] == (1, 96, 128)


def test_batched_prediction_matches_one_by_one(first_run: tuple[Path, TrainSummary], dataset: Path) -> None:
    from tests.tiny_coco import assert_same_predictions

    predictor = get_backend("torchvision").load(first_run[1].checkpoints[-1], device="cpu")
    assert_same_predictions(predictor, dataset / "images")
