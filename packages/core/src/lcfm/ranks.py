"""The share of a corpus this process works on (issue 10, item 4: "predict, embed, ingest
and simulate shard their work across ranks (files or shards i mod n)").

Ranks come from Accelerate (`accelerate launch --num_processes N`, one process per GPU;
`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N` on CPUs, gloo).
A plain `lcfm ...` is one process: rank 0 of 1. The launcher's WORLD_SIZE is read first so
that a single-process ingest or simulate never imports accelerate (and torch with it).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta

#: how long a rank waits for the others at a barrier: ranks get unequal shares of a
#: corpus (shards of different sizes), so the default 30 minutes of torch is too short
BARRIER_TIMEOUT = timedelta(hours=48)


@dataclass(frozen=True)
class Ranks:
    index: int = 0
    count: int = 1
    state: object | None = None  # accelerate.PartialState when launched on several ranks

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def share(self, items: list) -> list:
        """This rank's items: those at positions i with i mod count == index."""
        return list(items)[self.index::self.count]

    def wait(self) -> None:
        """Barrier: every rank reaches this point before any goes on."""
        if self.state is not None and self.count > 1:
            self.state.wait_for_everyone()

    def prefix(self) -> str:
        return f"[rank {self.index}/{self.count}] " if self.count > 1 else ""

    @property
    def device(self):
        """The device this rank computes on (its GPU, or the CPU)."""
        if self.state is None:
            from accelerate import PartialState

            return PartialState(timeout=BARRIER_TIMEOUT).device
        return self.state.device


def launched_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def current_ranks() -> Ranks:
    """Rank and number of ranks of this process (see module docstring)."""
    if launched_world_size() <= 1:
        return Ranks()
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    # accelerate forms a CPU (gloo) group only when told the run is on CPUs
    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    state = PartialState(cpu=cpu, timeout=BARRIER_TIMEOUT)
    if state.num_processes != launched_world_size():
        # every process would believe it is rank 0 of 1 and do all the work
        from lcfm.exceptions import ConfigError

        raise ConfigError(f"launched as {launched_world_size()} processes, but accelerate "
                          f"formed a group of {state.num_processes}; on CPUs launch with "
                          "ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu "
                          "--num_processes N")
    return Ranks(state.process_index, state.num_processes, state)


def log(message: str) -> None:
    """One progress line on stderr (used when stderr is not a terminal)."""
    print(message, file=sys.stderr, flush=True)
