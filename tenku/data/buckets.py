"""BucketBatchSampler: batches of one bucket shape, deterministic by (seed, epoch), sharded across ranks, resumable.

One epoch, for every rank alike: shuffle the indices of each bucket with a generator seeded by (seed, epoch),
cut each bucket into batches of `batch_size`, shuffle the list of batches with the same generator. Rank r then
takes global batches r, r + world_size, r + 2 * world_size, ..., so ranks get disjoint batches and, because
the global list is first cut to a multiple of world_size, the same number of them (DDP needs every rank to
step together). With drop_last=False each bucket's last, short batch is kept and the global list is padded
by repeating its first batches instead of cut (like torch's DistributedSampler): every sample is seen, and a
few batches are seen twice.

Resume: `state_dict()` holds the epoch and the position (batches this rank has taken in this epoch; a
finished epoch is saved as position 0 of the next); after `load_state_dict`, `__iter__` continues with the next batch an uninterrupted run would have produced.
The position counts batches the sampler has *yielded*. A DataLoader with num_workers=0 asks for a batch only
when the loop needs it, so that equals the batches consumed; with workers it prefetches ahead, so pass the
number of batches the training loop has consumed in this epoch: `state_dict(consumed=n)`.

`__iter__` covers one epoch; iterating across epochs is the trainer's loop (call `set_epoch` each epoch). An
`__iter__` that starts with the current epoch already finished moves on to the next epoch by itself, so a
run resumed exactly at an epoch's end, or a loop that never calls `set_epoch`, still sees fresh orders.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Iterator

import numpy as np
import torch


def bucket_counts(buckets: list[Hashable | None]) -> dict:
    """Items per bucket key, in key order; `None` keys (skipped items) are not counted."""
    counts: dict = {}
    for key in buckets:
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


class BucketBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Yields lists of dataset indices; every list shares one bucket key. `None` keys are skipped items."""

    def __init__(self, buckets: list[Hashable | None], batch_size: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1, drop_last: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
        self.batch_size, self.seed, self.rank, self.world_size, self.drop_last = batch_size, seed, rank, world_size, drop_last
        groups: dict[Hashable, list[int]] = {}
        for i, key in enumerate(buckets):
            if key is not None:
                groups.setdefault(key, []).append(i)
        # A fixed key order (by first index) makes the epoch independent of dict/hash order.
        self.groups = [np.array(ix, dtype=np.int64) for ix in groups.values()]
        self.keys = list(groups)
        self.epoch = 0
        self.position = 0  # batches of this rank already yielded (or consumed) in this epoch
        if self._global_count() == 0:
            warnings.warn(f"BucketBatchSampler: no full batch of {batch_size} in any bucket for {world_size} rank(s); "
                          f"bucket sizes {[len(g) for g in self.groups]}", stacklevel=2)

    # 1. the epoch's batches -------------------------------------------------

    def _global_count(self) -> int:
        n = sum(len(g) // self.batch_size if self.drop_last else -(-len(g) // self.batch_size) for g in self.groups)
        return n // self.world_size * self.world_size if self.drop_last else -(-n // self.world_size) * self.world_size

    def _global_batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        batches = []
        for ix in self.groups:
            ix = ix[rng.permutation(len(ix))]
            stop = len(ix) - len(ix) % self.batch_size if self.drop_last else len(ix)
            batches += [ix[k : k + self.batch_size].tolist() for k in range(0, stop, self.batch_size)]
        batches = [batches[k] for k in rng.permutation(len(batches))]
        total = self._global_count()
        if total > len(batches) and batches:  # drop_last=False: pad so every rank gets as many batches
            batches += [batches[k % len(batches)] for k in range(total - len(batches))]
        return batches[:total]

    def __iter__(self) -> Iterator[list[int]]:
        if self.position >= len(self):  # this epoch is finished (e.g. resumed at its very end): go on to the next
            self.epoch, self.position = self.epoch + 1, 0
        mine = self._global_batches(self.epoch)[self.rank :: self.world_size]
        while self.position < len(mine):
            batch = mine[self.position]
            self.position += 1
            yield batch

    def __len__(self) -> int:
        """Batches per epoch on this rank (the same on every rank and every epoch)."""
        return self._global_count() // self.world_size

    # 2. epochs and resume -----------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Go to `epoch` (its order depends only on (seed, epoch)), from its first batch.

        Setting the epoch the sampler is already in, while it is part-way through it, keeps the position, so a
        loop that calls `set_epoch(epoch)` right after `load_state_dict` still resumes mid-epoch.
        """
        if int(epoch) != self.epoch or not 0 < self.position < len(self):
            self.epoch, self.position = int(epoch), 0

    def state_dict(self, consumed: int | None = None) -> dict:
        """{"epoch", "position", "seed", "world_size", "batches"}; `consumed` overrides the position (see module doc)."""
        epoch, position = self.epoch, self.position if consumed is None else int(consumed)
        if position >= len(self):  # a finished epoch is saved as the start of the next one
            epoch, position = epoch + 1, 0
        return {"epoch": epoch, "position": position, "seed": self.seed, "world_size": self.world_size,
                "batches": self._global_count()}

    def load_state_dict(self, d: dict) -> None:
        """Continue from a saved state. A different world_size maps the position through the global batch count."""
        if "seed" in d and d["seed"] != self.seed:
            raise ValueError(f"sampler state was saved with seed {d['seed']}, this sampler has seed {self.seed}")
        if "batches" in d and d["batches"] != self._global_count():
            warnings.warn(f"the dataset changed since the sampler state was saved ({d['batches']} batches per epoch, "
                          f"now {self._global_count()}): the rest of this epoch differs from the interrupted run",
                          stacklevel=2)
        position = int(d["position"])
        if d.get("world_size", self.world_size) != self.world_size:
            position = position * int(d["world_size"]) // self.world_size
        self.epoch, self.position = int(d["epoch"]), min(position, len(self))
