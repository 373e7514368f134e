"""An endless, resumable stream of data set indices.

Each epoch is a fresh permutation drawn from its own generator seeded by (seed, epoch),
so the stream's position is two integers that a snapshot stores; data-parallel ranks
read disjoint slices of the same global batch.
"""
from __future__ import annotations

import torch


class InfiniteSampler:
    """Indices into a data set of ``size`` items, epoch after epoch; ``epoch`` and ``pos``
    are the resumable state."""

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, epoch: int = 0, pos: int = 0):
        if size < 1:
            raise ValueError("the data set is empty")
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.epoch, self.pos = epoch, pos
        self._order = self._permutation(epoch)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=gen)

    def take(self, n: int) -> list[int]:
        """The next ``n`` indices of the stream."""
        out: list[int] = []
        while len(out) < n:
            if self.pos >= self.size:
                self.epoch, self.pos = self.epoch + 1, 0
                self._order = self._permutation(self.epoch)
            k = min(n - len(out), self.size - self.pos)
            out.extend(self._order[self.pos: self.pos + k].tolist())
            self.pos += k
        return out

    def take_batch(self, batch: int, rank: int = 0, world_size: int = 1) -> list[int]:
        """This rank's share of the next global batch (every rank advances the stream alike)."""
        idx = self.take(batch)
        per = batch // world_size
        return idx[rank * per: (rank + 1) * per]
