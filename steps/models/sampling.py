"""An endless, resumable sample order: epoch e is a permutation seeded by (seed, e).

Sample number p (counted from the start of training) is the same whether or not the run was
interrupted, so a resumed run sees exactly the images the uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class ResumableSampler(torch.utils.data.Sampler):
    """Yields (image index, sample seed) forever, starting at sample number `start`."""

    def __init__(self, size: int, seed: int, start: int = 0) -> None:
        self.size = size
        self.seed = seed
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, offset = divmod(self.start, self.size)
        while True:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
            for position in range(offset, self.size):
                sample = epoch * self.size + position
                yield order[position], (self.seed << 32) + sample
            epoch, offset = epoch + 1, 0
