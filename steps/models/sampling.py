"""An endless, resumable sample order: epoch e is a permutation seeded by (seed, e).

Sample number p (counted from the start of training) is the same whether or not the run was
interrupted, so a resumed run sees exactly the images the uninterrupted run would have seen.
With several processes (one per GPU), process `rank` takes samples rank, rank + world, ...:
together they see the same stream as one process would.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class ResumableSampler(torch.utils.data.Sampler):
    """Yields (image index, sample seed) forever, starting at sample number `start`."""

    def __init__(self, size: int, seed: int, start: int = 0, rank: int = 0, world: int = 1) -> None:
        self.size = size
        self.seed = seed
        self.start = start
        self.rank = rank
        self.world = world

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, offset = divmod(self.start, self.size)
        while True:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
            for position in range(offset, self.size):
                sample = epoch * self.size + position
                if sample % self.world == self.rank:
                    yield order[position], (self.seed << 32) + sample
            epoch, offset = epoch + 1, 0


class IndexSampler(torch.utils.data.Sampler):
    """The image indices of a ResumableSampler, for loaders that take plain indices (detectron2's)."""

    def __init__(self, sampler: ResumableSampler) -> None:
        self.sampler = sampler

    def __iter__(self) -> Iterator[int]:
        for index, _seed in self.sampler:
            yield index
