"""detectron2 trainer hooks for our outputs: gradient clipping, logs, checkpoints and SIGTERM."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from detectron2.engine import HookBase

from steps.models.distributed import agree_to_stop
from steps.models.preemption import Preempted, StopOnSigterm
from steps.models.training_log import TrainingLog, say


class ClipGradNorm(HookBase):
    """Clip the total gradient norm between backward and the update (as the torchvision loop does)."""

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm

    def after_backward(self) -> None:
        scaler = getattr(self.trainer, "grad_scaler", None)
        if scaler is not None:
            scaler.unscale_(self.trainer.optimizer)  # clip the true gradients, not the AMP-scaled ones
        torch.nn.utils.clip_grad_norm_(self.trainer.model.parameters(), self.max_norm)


class LogProgress(HookBase):
    """Every `period` iterations (and the last): averaged losses to metrics.json, TensorBoard, stdout."""

    def __init__(self, log: TrainingLog, period: int, total: int) -> None:
        self.log, self.period, self.total = log, period, total
        self.final_loss: float | None = None
        self._reset()

    def _reset(self) -> None:
        self.window: dict[str, float] = {}
        self.count = 0
        self.started = time.perf_counter()

    def before_train(self) -> None:
        self._reset()

    def after_step(self) -> None:
        iteration = self.trainer.iter
        latest = self.trainer.storage.latest()  # name -> (value, iteration it was put at)
        for name, (value, at) in latest.items():
            if name.startswith("loss_") and at == iteration:
                self.window[name] = self.window.get(name, 0.0) + float(value)
        self.count += 1
        done = iteration + 1
        if done % self.period == 0 or done == self.total:
            averaged = {name: total / self.count for name, total in self.window.items()}
            seconds = (time.perf_counter() - self.started) / self.count
            self.log.log(done, self.total, averaged, float(latest["lr"][0]), seconds)
            self.final_loss = sum(averaged.values())
            self._reset()


class Checkpoints(HookBase):
    """Checkpoints every `period` iterations and at the end; on SIGTERM one more, then stop (exit 143).

    `save` writes one checkpoint (rank 0 only); every process runs the SIGTERM check so all stop together.
    """

    def __init__(self, save: Callable[[int], None] | None, period: int, total: int, sigterm: StopOnSigterm) -> None:
        self.save, self.period, self.total, self.sigterm = save, period, total, sigterm

    def after_step(self) -> None:
        done = self.trainer.iter + 1
        saved = done % self.period == 0 or done == self.total
        if saved and self.save:
            self.save(done)
        if agree_to_stop(self.sigterm.requested):
            if self.save:
                if not saved:
                    self.save(done)
                say(f"SIGTERM: checkpoint written at iteration {done}; exiting with {Preempted(done).code} so the step is retried")
            raise Preempted(done)
