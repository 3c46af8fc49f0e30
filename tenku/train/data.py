"""Training data: endless, resumable batches of one bucket shape each, and the clip datasets both tasks read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from tenku.train import distributed
from tenku.data.buckets import BucketBatchSampler, bucket_counts


def data_path(cfg) -> Path:
    """cfg.data as an existing path, or a clear error naming what to pass."""
    if cfg.data is None:
        raise ValueError("no training data: pass --data (a clip manifest for the VAE, a latent cache for the DiT)")
    data = Path(cfg.data)
    if not data.exists():
        raise FileNotFoundError(f"training data {data} not found")
    return data


def clip_dataset(cfg, clips, stride: int):
    """A VideoDataset of manifest clips in cfg's buckets (sizes, frames, fps), sides a multiple of `stride`."""
    from tenku.data.clips import BucketConfig, VideoDataset

    buckets = BucketConfig(sizes=[tuple(s) for s in cfg.sizes], frames=[int(f) for f in cfg.frames], stride=stride,
                           fps=cfg.fps)
    return VideoDataset(clips, buckets)


class Batches:
    """Endless batches over epochs, tracking (epoch, batches consumed) for exact resume. None batches are skipped."""

    def __init__(self, dataset, collate: Callable, cfg, info: distributed.DistInfo):
        self.batch_sampler = BucketBatchSampler(dataset.buckets, cfg.batch_size, seed=cfg.seed, rank=info.rank,
                                                world_size=info.world_size, drop_last=True)
        if len(self.batch_sampler) == 0:
            counts = bucket_counts(dataset.buckets)
            raise ValueError(f"no full batch of {cfg.batch_size} per process x {info.world_size} processes: "
                             f"clips per bucket {counts or 'none (every clip was skipped)'}; lower batch_size or add data")
        self.generator = torch.Generator()  # DataLoader base seed: reseeded per epoch, so resume repeats it
        self.loader = torch.utils.data.DataLoader(dataset, batch_sampler=self.batch_sampler, collate_fn=collate,
                                                  num_workers=cfg.num_workers, generator=self.generator,
                                                  pin_memory=info.device.type == "cuda",
                                                  persistent_workers=False)
        self.seed, self.consumed, self._it = cfg.seed, 0, None
        self.dataset, self._empty = dataset, 0  # batches in a row that held no readable clip

    def state_dict(self) -> dict:
        return self.batch_sampler.state_dict(consumed=self.consumed)

    def load_state_dict(self, d: dict) -> None:
        self.batch_sampler.load_state_dict(d)
        self.consumed = self.batch_sampler.position

    def __iter__(self) -> Iterator[dict]:
        return self

    def __next__(self) -> dict:
        while True:
            if self._it is None:
                if self.consumed >= len(self.batch_sampler):  # the epoch is done: the next one, from its start
                    self.batch_sampler.set_epoch(self.batch_sampler.epoch + 1)
                    self.consumed = 0
                self.generator.manual_seed(self.seed * 1_000_003 + self.batch_sampler.epoch)
                self._it = iter(self.loader)
            batch = next(self._it, StopIteration)
            if batch is StopIteration:
                self._it = None
                self.consumed = len(self.batch_sampler)
                continue
            self.consumed += 1
            if batch is not None:  # None: every clip in it was unreadable (logged by the dataset)
                self._empty = 0
                return batch
            self._empty += 1
            if self._empty >= len(self.batch_sampler):  # a whole epoch and nothing readable: it never will be
                skipped = getattr(self.dataset, "skipped", [])
                examples = "; ".join(f"{p}: {r}" for p, r in skipped[:3])
                raise ValueError(f"no readable clip in a whole epoch ({len(self.batch_sampler)} batches): every clip "
                                 f"failed to decode ({len(skipped)} skipped{', e.g. ' + examples if examples else ''})")
