"""Where training progress goes: metrics.json, TensorBoard events and flushed stdout lines.

On resume, entries logged after the checkpoint being resumed are dropped (those iterations run
again), so metrics.json reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from steps.jsonio import dumps
from steps.log import get as get_logger
from steps.progress import format_duration

_log = get_logger("train")


def progress_line(iteration: int, total: int, loss: float, lr: float, seconds_per_iter: float) -> str:
    eta = format_duration((total - iteration) * seconds_per_iter)
    return f"iter {iteration}/{total}  loss {loss:.3f}  lr {lr:.4f}  {seconds_per_iter:.2f} s/it  eta {eta}"


def say(message: str) -> None:
    """One line on stdout, flushed at once so pod logs show it live."""
    _log.info(message)


def last_logged_loss(out_dir: Path, after: int) -> float | None:
    """The last total loss in `out_dir/metrics.json` if logged after iteration `after`, else None."""
    path = Path(out_dir) / "metrics.json"
    try:
        entries = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return float(entries[-1]["loss"]) if entries and entries[-1]["iteration"] > after else None


class TrainingLog:
    def __init__(self, out_dir: Path, start_iteration: int) -> None:
        self.metrics_path = Path(out_dir) / "metrics.json"
        self.entries = [e for e in self._read_existing() if e["iteration"] <= start_iteration]
        # purge_step hides TensorBoard events past the checkpoint that a preempted run had written.
        self.writer = SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"), purge_step=start_iteration or None)

    def _read_existing(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        try:
            entries = json.loads(self.metrics_path.read_text())
        except json.JSONDecodeError:
            _log.warning(f"warning: {self.metrics_path}: unreadable, starting a new one")
            return []
        return entries if isinstance(entries, list) else []

    def log(self, iteration: int, total: int, losses: dict[str, float], lr: float, seconds_per_iter: float) -> None:
        """Record the losses (already averaged over the log window) of `iteration` completed iterations."""
        loss = sum(losses.values())
        entry = {"iteration": iteration, "loss": loss, **losses, "lr": lr, "seconds": seconds_per_iter}
        self.entries.append(entry)
        self._write()
        self.writer.add_scalar("loss/total", loss, iteration)
        for name, value in losses.items():
            self.writer.add_scalar(f"loss/{name}", value, iteration)
        self.writer.add_scalar("lr", lr, iteration)
        self.writer.add_scalar("seconds_per_iter", seconds_per_iter, iteration)
        say(progress_line(iteration, total, loss, lr, seconds_per_iter))

    def _write(self) -> None:
        tmp = self.metrics_path.with_name(f".{self.metrics_path.name}.tmp")
        tmp.write_text(dumps(self.entries, indent=1))
        os.replace(tmp, self.metrics_path)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
