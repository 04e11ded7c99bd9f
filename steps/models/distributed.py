"""Data-parallel training on one node: one process per GPU, started and stopped as one step.

The pod's SIGTERM reaches only this (parent) process: it forwards the signal to every worker, the
workers agree on the iteration to stop at (an all-reduce of their flags), rank 0 writes the
checkpoint, and each exits with 143, which becomes Preempted (exit 143) here as well.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from steps.models.checkpoints import list_checkpoints
from steps.models.preemption import EXIT_CODE, Preempted


def is_main_process() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def agree_to_stop(requested: bool) -> bool:
    """True on every process as soon as any of them got SIGTERM (a no-op with one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return requested
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    flag = torch.tensor([int(requested)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def run_workers(start: Callable[[], None], checkpoint_dir: Path) -> None:
    """Call `start` (which spawns and joins the workers), forwarding SIGTERM to them."""
    with _forward_sigterm():
        try:
            start()
        except torch.multiprocessing.ProcessExitedException as exc:
            if exc.exit_code != EXIT_CODE:
                raise
            latest = list_checkpoints(checkpoint_dir)
            raise Preempted(latest[-1][0] if latest else 0) from None


def spawn(worker: Callable[..., None], world: int, args: tuple[Any, ...]) -> None:
    """torchrun-style: `worker(rank, world, *args)` in `world` processes, each on GPU `rank`."""
    torch.multiprocessing.start_processes(_entry, args=(world, _free_port(), worker, args), nprocs=world, start_method="spawn")


def _entry(rank: int, world: int, port: int, worker: Callable[..., None], args: tuple[Any, ...]) -> None:
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(rank)
    # NCCL between GPUs; gloo runs the same code as CPU processes (which is how the tests run it,
    # like detectron2's launch does without CUDA). Configs cannot ask for it: gpus > 1 needs CUDA.
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        worker(rank, world, *args)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _forward_sigterm() -> Iterator[None]:
    def forward(signum: int, frame: object) -> None:
        for child in multiprocessing.active_children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
