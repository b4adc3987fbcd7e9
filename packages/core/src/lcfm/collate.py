"""Random state shared by every model collator.

A collator draws all its randomness (windows, masking) from `rng`. The engine assigns a
fresh generator seeded from (seed, step) before each batch, which makes runs resumable with
identical batches; inside a torch DataLoader worker each worker gets its own stream, since
workers would otherwise start from copies of one generator."""

from __future__ import annotations

import numpy as np
import torch


class SeededCollator:
    def __init__(self, seed: int = 0):
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._worker: int | None = None

    @property
    def rng(self) -> np.random.Generator:
        """The generator of training randomness; the engine assigns a fresh one per step."""
        return self._rng

    @rng.setter
    def rng(self, generator: np.random.Generator) -> None:
        self._rng = generator

    def worker_generator(self) -> np.random.Generator:
        """`rng`, re-seeded once per DataLoader worker so workers draw different streams."""
        info = torch.utils.data.get_worker_info()
        worker = None if info is None else info.id
        if worker != self._worker:
            self._worker = worker
            self._rng = np.random.default_rng([self.seed, 0 if worker is None else worker + 1])
        return self._rng


class CollateWrapper:
    """A collator around another one (augmentation, extra features): its random state is
    the wrapped collator's, so the engine's per-step seeding reaches it."""

    def __init__(self, collate):
        self.collate = collate

    @property
    def rng(self):
        return getattr(self.collate, "rng", None)

    @rng.setter
    def rng(self, value):
        if hasattr(self.collate, "rng"):
            self.collate.rng = value

    def worker_generator(self):
        inner = getattr(self.collate, "worker_generator", None)
        return inner() if inner is not None else None
