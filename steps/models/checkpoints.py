"""Checkpoint files: atomic writes, discovery, and loading the newest readable one.

Files are `checkpoints/model_<iteration:07d>.pth` where the number is the count of completed
iterations. A write goes to a hidden temp file first and is renamed into place, so a pod killed
mid-write never leaves a half-written `model_*.pth` behind.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from steps.config import Config, ModelConfig, dump_config
from steps.errors import ConfigError, ExternalError, InputError, excerpt
from steps.storage import atomic_file

_NAME = re.compile(r"^model_(\d{7,})\.pth$")
# What a checkpoint needs to resume training from it (both backends write all of these).
RESUME_KEYS = ("backend", "iteration", "model", "optimizer", "scheduler", "scaler", "rng", "config", "categories")


class CheckpointWarning(UserWarning):
    """A checkpoint could not be read and was skipped."""


def checkpoint_path(checkpoint_dir: Path, iteration: int) -> Path:
    return Path(checkpoint_dir) / f"model_{iteration:07d}.pth"


def is_checkpoint_name(name: str) -> bool:
    return _NAME.match(name) is not None


def list_checkpoints(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every `model_*.pth`, oldest first."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """Write `state` to `path` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    try:
        with atomic_file(path) as handle:
            torch.save(state, handle)
    except (OSError, RuntimeError) as exc:  # torch reports a full disk as a RuntimeError of its writer
        reason = getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ExternalError(
            f"{path}: cannot write the checkpoint ({reason}); free disk space or point --output elsewhere "
            "(nothing half-written was left)"
        ) from None
    return path


def read_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (tensors and plain values only)."""
    try:
        state = torch.load(Path(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(unpickling_reason(exc)) from None
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path}: not a trainyard checkpoint (no 'model' entry)")
    return state


def unpickling_reason(exc: Exception) -> str:
    """Why torch's weights-only load refused a file, without torch's advice to retry with
    weights_only=False (that would run whatever code the file holds: never tell users to)."""
    found = re.search(r"GLOBAL (\S+)", str(exc))
    if found:
        return (
            f"it holds a Python object ({found.group(1)}), not only tensors and plain values; trainyard never "
            "runs code from a weights file, so this is not a trainyard checkpoint or weights file (or it was tampered with)"
        )
    detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(exc))
    reason = detail.group(1).strip() if detail else (str(exc).splitlines() or ["unreadable"])[0][:120]
    return f"not a file of tensors torch can read ({reason})"


def open_checkpoint(path: Path, backend: str) -> dict[str, Any]:
    """A checkpoint to predict with, or a one-line InputError saying what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        state = read_checkpoint(path)
    except Exception as exc:  # unreadable or foreign file: a user-facing input problem
        raise InputError(f"{path}: not a readable trainyard checkpoint ({type(exc).__name__}: {exc})") from None
    if state.get("backend") != backend:
        raise InputError(f"{path}: written by backend {state.get('backend')!r}, not {backend!r}; load it with that backend")
    return state


# What only resuming needs: a registered model keeps the weights and what describes them.
TRAINING_ONLY_KEYS = ("optimizer", "scheduler", "scaler", "rng")


def save_weights_only(checkpoint: Path, target: Path) -> dict[str, Any]:
    """Copy a checkpoint without its optimizer/scheduler/RNG state (half the size, still
    loadable); returns what was written."""
    state = read_checkpoint(checkpoint)
    kept = {k: v for k, v in state.items() if k not in TRAINING_ONLY_KEYS}
    save_checkpoint(kept, target)
    return kept


def load_latest(checkpoint_dir: Path, map_location: str | torch.device = "cpu") -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads; unreadable newer ones are renamed `*.corrupt` with a warning.

    Renaming keeps a broken file from being picked (or evaluated) again, while keeping it for a look.
    """
    for iteration, path in reversed(list_checkpoints(checkpoint_dir)):
        try:
            return path, read_checkpoint(path, map_location)
        except Exception as exc:  # any unpickling/zip/IO error means the file is unusable
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            warnings.warn(
                f"{path}: unreadable checkpoint of iteration {iteration} ({type(exc).__name__}: {exc}); "
                f"moved to {aside.name}, falling back to the previous one",
                CheckpointWarning,
                stacklevel=2,
            )
    return None


# What a resumed run may set otherwise than the run it continues: where and how often it writes,
# what it runs on, inference-only settings, and the total it trains to (a longer run continues
# the same one; that change is kept in the checkpoints' `history`). Every other model.* and
# train.* value changes what the run learns, and a resume would make a model that no config
# describes: refused.
MAY_CHANGE = frozenset({
    "train.iterations", "train.checkpoint_period", "train.log_period", "train.num_workers", "train.device",
    "train.gpus", "train.checkpoint_uri", "train.amp", "train.deterministic", "model.rpn_proposals_test",
    "model.box_nms_thresh",
})
RECORDED = ("train.iterations",)  # may change, and is kept in the checkpoints' history when it does


def check_resumable(state: dict[str, Any], backend: str, config: Config, categories: list[dict[str, Any]], where: Path,
                    path: Path | None = None) -> None:
    """A checkpoint can only resume the same backend, model and training settings (MAY_CHANGE
    aside) on the same categories; and only if every field it holds is what the trainer wrote
    (`path`, the checkpoint's file: its name must carry its iteration)."""
    missing = [key for key in RESUME_KEYS if key not in state]
    if missing or not isinstance(state.get("config"), dict) or not isinstance(state["config"].get("model"), dict):
        raise InputError(
            f"{where}: the newest checkpoint (iteration {excerpt(state.get('iteration', '?'))}) lacks "
            f"{', '.join(missing) or 'config.model'}, so training cannot resume from it; "
            "use a new output folder, or delete that checkpoint to resume from the one before"
        )
    if state.get("backend") != backend:
        raise ConfigError(
            f"{where}: checkpoints there were written by model.backend={excerpt(state.get('backend'))}, not {backend}; "
            "use a new output folder or the same backend"
        )
    problem = _malformed(state, path)
    if problem:
        raise InputError(f"{path or where}: {problem}; this is not a checkpoint as the trainer wrote it (damaged or "
                         "edited): use a new output folder, or delete it to resume from the one before")
    try:
        ModelConfig.model_validate(state["config"]["model"])
    except ValidationError:
        raise InputError(f"{where}: the newest checkpoint's config.model is not valid; use a new output folder") from None
    if [c["name"] for c in state["categories"]] != [c["name"] for c in categories]:
        raise ConfigError(f"{where}: checkpoints there were trained on other categories; use a new output folder")
    changed = changed_settings(state["config"], dump_config(config))
    if changed:
        # The data position is iterations x batch size: another batch size would skip or repeat images.
        shown = "; ".join(f"{key}={excerpt(old)}, not {excerpt(new)}" for key, (old, new) in changed.items())
        raise ConfigError(f"{where}: checkpoints there were trained with {shown}; resume with the same settings "
                          "(they change what the run learns) or use a new output folder")


def changed_settings(saved: dict[str, Any], current: dict[str, Any], allowed: bool = False) -> dict[str, tuple]:
    """`section.key`: (saved, current) of the model and train settings that differ: those that
    may not change (or, with `allowed`, those RECORDED that did). Keys a checkpoint predates are
    not compared."""
    changed = {}
    for section in ("model", "train"):
        before, now = saved.get(section) or {}, current.get(section) or {}
        for key, value in now.items():
            name = f"{section}.{key}"
            wanted = name in RECORDED if allowed else name not in MAY_CHANGE
            if wanted and key in before and before[key] != value:
                changed[name] = (before[key], value)
    return changed


def resume_history(state: dict[str, Any], config: Config) -> list[dict[str, Any]]:
    """The history to write into this run's checkpoints: the resumed checkpoint's, plus what this
    resume changed of the RECORDED settings (at which iteration, from what, to what)."""
    history = list(state.get("history") or [])
    changed = changed_settings(state["config"], dump_config(config), allowed=True)
    if changed:
        history.append({"iteration": state["iteration"],
                         "changed": {key: {"from": old, "to": new} for key, (old, new) in changed.items()}})
    return history


def resume(state: dict[str, Any], path: Path, load: list[tuple[Any, str]]) -> int:
    """Load a checked checkpoint into the training objects (`load`: (object, state key) pairs,
    an empty state skipped) and restore the RNGs; returns the iteration to continue from. A state
    that does not fit (another architecture's weights) is one InputError."""
    try:
        for target, key in load:
            if state[key]:
                target.load_state_dict(state[key])
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"{path}: its {key} state does not fit this run ({reason}); use a new output folder, or "
                         "delete that checkpoint to resume from the one before") from None
    restore_rng(state["rng"])
    return int(state["iteration"])


def _malformed(state: dict[str, Any], path: Path | None) -> str:
    """What is wrong with a checkpoint's own fields ("" when nothing): the checks a resume needs
    before it trusts them."""
    iteration, total = state["iteration"], (state["config"].get("train") or {}).get("iterations")
    if type(iteration) is not int:
        return f"iteration {excerpt(iteration)} is not a whole number"
    if iteration < 1:
        return f"iteration {iteration} is not a completed iteration (1 or more)"
    if type(total) is int and iteration > total:
        return f"it claims iteration {excerpt(iteration)}, beyond the {total} its own run trains to"
    if path is not None and (match := _NAME.match(Path(path).name)) and int(match.group(1)) != iteration:
        return f"it claims iteration {excerpt(iteration)} but its file is named {Path(path).name}"
    weights = state["model"]
    if not isinstance(weights, dict) or not weights or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        return "it holds no model weights (its model state is empty or not tensors)"
    optimizer = state["optimizer"]
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("param_groups"), list) \
            or not isinstance(optimizer.get("state"), dict):
        return "its optimizer state has no param_groups"
    categories = state["categories"]
    if not isinstance(categories, list) or not categories or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) for c in categories):
        return "its categories are not a list of {id, name}"
    return _rng_problem(state["rng"])


def _rng_problem(rng: Any) -> str:
    """Restore the RNG states into throwaway generators: "" when they all load."""
    try:
        random.Random().setstate(_as_tuple(rng["python"]))
        numpy_state = dict(rng["numpy"])
        numpy_state["state"] = {"key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32),
                                "pos": numpy_state["state"]["pos"]}
        np.random.RandomState().set_state(numpy_state)
        torch.Generator().set_state(rng["torch"].cpu())
    except (TypeError, ValueError, KeyError, IndexError, RuntimeError, OverflowError, AttributeError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        return f"its RNG state cannot be restored ({type(exc).__name__}: {reason})"
    return ""


def capture_rng() -> dict[str, Any]:
    """Every RNG state a training step touches, as tensors/lists (loadable with weights_only)."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {**np_state, "state": {"key": np_state["state"]["key"].tolist(), "pos": np_state["state"]["pos"]}},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    np_state = dict(state["numpy"])
    np_state["state"] = {"key": np.asarray(np_state["state"]["key"], dtype=np.uint32), "pos": np_state["state"]["pos"]}
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _as_tuple(value: Any) -> Any:
    # random.setstate wants nested tuples; a round trip may hand back lists.
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value
