"""Deterministic, resumable batching.

The batch at global step s is a pure function of (seed, s): each epoch's order is a
permutation drawn from `default_rng([seed, epoch])`, and a collator's random state (windows,
masking) is re-seeded from `[seed, step]` before it builds the batch. A run resumed at step
s therefore sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch


class StepBatches:
    def __init__(self, dataset, batch_size: int, collate: Callable, *, seed: int,
                 shuffle: bool = True, drop_last: bool = False, process_index: int = 0,
                 num_processes: int = 1):
        self.dataset, self.collate, self.seed, self.shuffle = dataset, collate, seed, shuffle
        self.batch_size = batch_size
        n = len(dataset)
        full, rest = divmod(n, batch_size)
        self.batches_per_epoch = full + (1 if rest and not drop_last else 0)
        if self.batches_per_epoch == 0:
            self.batches_per_epoch = 1  # fewer rows than one batch: one short batch
        self.process_index, self.num_processes = process_index, num_processes

    def indices(self, step: int) -> np.ndarray:
        epoch, position = divmod(step, self.batches_per_epoch)
        n = len(self.dataset)
        order = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle
                 else np.arange(n))
        chunk = order[position * self.batch_size:(position + 1) * self.batch_size]
        return chunk[self.process_index::self.num_processes]

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        if hasattr(self.collate, "rng"):
            self.collate.rng = np.random.default_rng([self.seed, 1_000_003, step])
        return self.collate([self.dataset[int(i)] for i in self.indices(step)])

    def epoch_of(self, step: int) -> int:
        return step // self.batches_per_epoch

    def iterate(self, start: int, stop: int) -> Iterator[tuple[int, dict]]:
        for step in range(start, stop):
            yield step, self.batch(step)


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def optimiser_step(accelerator, model, loss, optimizer, scheduler, max_grad_norm: float):
    """Backward pass, optional gradient clipping, optimiser and schedule step."""
    accelerator.backward(loss)
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


class BalancedStepBatches(StepBatches):
    """Batches balanced among labels (ATCAT sect. 2.4, after ATAT): each slot draws a class
    uniformly, then a light curve of that class uniformly, from `default_rng([seed, step])`."""

    def __init__(self, dataset, batch_size: int, collate: Callable, **kwargs):
        super().__init__(dataset, batch_size, collate, **kwargs)
        labels = np.array(dataset.label, dtype=object)
        self.by_class = [np.flatnonzero(labels == c) for c in sorted(set(labels) - {None})]

    def indices(self, step: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 99, step])
        classes = rng.integers(len(self.by_class), size=self.batch_size)
        chunk = np.array([self.by_class[c][rng.integers(self.by_class[c].size)]
                          for c in classes])
        return chunk[self.process_index::self.num_processes]
