"""Deterministic, resumable batching.

The batch at global step s is a pure function of (seed, s): each epoch's order is a
permutation drawn from `default_rng([seed, epoch])`, and a collator's random state (windows,
masking) is re-seeded from `[seed, step]` before it builds the batch. A run resumed at step
s therefore sees exactly the batches an uninterrupted run would.

Training and validation stream shards (issue 10, items 1-3): `StepDataset` is a map-style
dataset whose item s is the collated batch of global step s (rows from `lcfm.stream`'s
`EpochPlan`, read through a per-process `RowGroupCache`), served by a torch DataLoader
with `num_workers` worker processes (`step_loader`). Since an item depends only on (seed,
s), batches are the same with 0 or 8 workers, and after a restart. `evaluation_batches` serves
in-memory datasets (inference on frames).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np
import torch

from lcfm.collate import CollateWrapper
from lcfm.stream import EpochPlan, RowGroupCache, ShardIndex, with_extras

#: blocks (row groups) each process keeps decoded: a mixing window and the next one
CACHE_BLOCKS = 16


def default_workers() -> int:
    """DataLoader workers when `--workers` is not given: none on a machine of one or two
    cores, where a worker competes with the training process for the same cores (measured
    slower there), else min(4, cores - 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    return 0 if cores <= 2 else min(4, cores - 1)


def seed_collator(collate: Callable, key: list[int]) -> None:
    """Give `collate` (and a collator it wraps) the generator `default_rng(key)`.

    A `SeededCollator` re-seeds itself once per DataLoader worker (`worker_generator`);
    asking it for its worker generator first makes that re-seed happen now, so it cannot
    replace the step's generator: batch s never depends on the worker that builds it."""
    for target in (collate, getattr(collate, "collate", None)):
        if target is not None and hasattr(target, "worker_generator"):
            target.worker_generator()
    if hasattr(collate, "rng"):
        collate.rng = np.random.default_rng(key)


class StepDataset(torch.utils.data.Dataset):
    """Item s: this rank's part of the batch of global step s, collated.

    The global batch is `plan.batch_rows(s)`; rank r of n takes rows r, r+n, ... of it (the
    rows are length-sorted, so every rank gets similar lengths). `extras` maps a name to a
    table indexed by global row (ATCAT's encoded metadata) attached to each batch."""

    def __init__(self, index: ShardIndex, plan: EpochPlan, collate: Callable, *, seed: int,
                 band_names=(), process_index: int = 0, num_processes: int = 1,
                 extras: Mapping[str, np.ndarray] | None = None, cache_blocks: int = CACHE_BLOCKS,
                 seed_key: int = 1_000_003):
        self.index, self.plan, self.collate, self.seed = index, plan, collate, seed
        self.band_names = tuple(band_names)
        self.process_index, self.num_processes = process_index, num_processes
        self.extras = dict(extras or {})
        self.cache_blocks, self.seed_key = cache_blocks, seed_key
        self._cache: RowGroupCache | None = None

    def __getstate__(self):  # a worker builds its own cache
        return {**self.__dict__, "_cache": None}

    @property
    def cache(self) -> RowGroupCache:
        if self._cache is None:
            self._cache = RowGroupCache(self.index, self.band_names, self.cache_blocks)
        return self._cache

    def rows(self, step: int) -> np.ndarray:
        return self.plan.batch_rows(step)[self.process_index::self.num_processes]

    def __getitem__(self, step: int):
        rows = self.rows(step)
        if rows.size == 0:  # more ranks than rows in this batch
            return None
        flat = with_extras(self.cache.take(rows), rows, self.extras)
        seed_collator(self.collate, [self.seed, self.seed_key, step])
        return self.collate(flat)

    def __len__(self) -> int:
        return self.plan.batches_per_epoch


def step_loader(dataset: StepDataset, steps: range, workers: int, *,
                persistent: bool = False) -> torch.utils.data.DataLoader:
    """Items `steps` of `dataset`, built in `workers` processes ahead (0: in this
    process). The loader has its own generator, so creating it never draws from torch's
    global random state (dropout): a resumed run keeps the random stream of a whole one."""
    kwargs = {}
    if workers > 0:
        kwargs = {"prefetch_factor": 4, "persistent_workers": persistent}
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=steps, num_workers=workers,
        pin_memory=torch.cuda.is_available(), generator=torch.Generator().manual_seed(0),
        **kwargs)


def evaluation_plan(index: ShardIndex, rows, batch_size: int, seed: int) -> EpochPlan:
    """Every row once, in shard order sorted by length within chunks (little padding)."""
    return EpochPlan.for_rows(index, rows, batch_size, seed, shuffle=False, bucket=True)


def evaluation_steps(plan: EpochPlan, process_index: int = 0, num_processes: int = 1
                     ) -> range:
    """The validation batches of one rank: whole batches b with b mod n == rank, so each
    batch (and its fixed masks) is the same whatever the number of ranks."""
    return range(process_index, plan.batches_per_epoch, num_processes)


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def optimiser_step(accelerator, model, loss, optimizer, scheduler,
                   max_grad_norm: float | None):
    """Backward pass; at the last micro-batch of an optimiser step (Accelerate's gradient
    accumulation: call inside `accelerator.accumulate(model)`), gradient clipping when
    `max_grad_norm` is set (None or 0: none, as ATCAT's fine-tuning, sect. 2.4), the
    optimiser step and one schedule step (the schedule counts optimiser steps)."""
    accelerator.backward(loss)
    if accelerator.sync_gradients:
        if max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()


def evaluation_batches(dataset, batch_size: int, collate: Callable, seed: int = 0):
    """Every row once, in order, with a fixed collator seed (same masks every evaluation)."""
    for start in range(0, len(dataset), batch_size):
        if hasattr(collate, "rng"):
            collate.rng = np.random.default_rng([seed, 7, start])
        yield collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])


class BalancedPlan:
    """Batches balanced among labels (ATCAT sect. 2.4, after ATAT) over streamed rows: each
    slot draws a class uniformly, then a light curve of that class uniformly, from
    `default_rng([seed, 99, step])`. The label index holds row numbers only (from the
    label column), never sequences. Same interface as `lcfm.stream.EpochPlan`."""

    def __init__(self, rows, labels, batch_size: int, seed: int):
        rows, labels = np.asarray(rows, np.int64), np.asarray(labels, dtype=object)
        self.batch_size, self.seed = batch_size, seed
        self.by_class = [rows[labels == c] for c in sorted(set(labels) - {None})]
        full, rest = divmod(rows.size, batch_size)
        self.batches_per_epoch = max(1, full + (1 if rest else 0))

    def epoch_of(self, step: int) -> int:
        return step // self.batches_per_epoch

    def batch_rows(self, step: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 99, step])
        classes = rng.integers(len(self.by_class), size=self.batch_size)
        return np.array([self.by_class[c][rng.integers(self.by_class[c].size)]
                         for c in classes], np.int64)


class AugmentedCollate(CollateWrapper):
    """Augment rows, then collate them; both draw from one re-seedable generator."""

    def __init__(self, collate, augmenter):
        super().__init__(collate)
        self.augmenter = augmenter

    @CollateWrapper.rng.setter
    def rng(self, value):
        CollateWrapper.rng.fset(self, value)
        if self.augmenter is not None:
            self.augmenter.rng = np.random.default_rng(value.integers(2**63))

    def __call__(self, rows):
        if self.augmenter is not None:
            rows = [self.augmenter(r) for r in rows]
        return self.collate(rows)
