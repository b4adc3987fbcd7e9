"""The simulator contract: a survey's cadence, its classes' signals and noise -> rows.

A survey plugin's `simulator()` returns a `SurveySimulator`. The simulator works on batches
of light curves at once: `cadence(m, rng)` draws the observation times of m light curves
(never looking at their class, so time sampling alone cannot give a label away), and
`light_curves(label, cadence, rng)` fills them with one class's signal and noise. The base
class balances classes, calls both per class, and turns the arrays into canonical rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lcfm.survey import Row


@dataclass
class Cadence:
    """Observation times of m light curves, padded to a common length L.

    Entries outside `mask` are padding (finite, ignored when rows are made). When the times
    are one regular grid per light curve (space photometry), `step` is its spacing in days
    and padding marks gaps inside the grid, so grid-based generators (FFT noise) apply.
    """

    time: np.ndarray  # (m, L) float64, days, sorted along L where mask is True
    mask: np.ndarray  # (m, L) bool, True for a real observation
    band: np.ndarray | None = None  # (m, L) int8 index into the simulator's band list
    step: float | None = None  # grid spacing in days of a regular grid, else None
    meta: dict[str, np.ndarray] = field(default_factory=dict)  # (m,) per light curve
    #: (m, K) times of instrument events (downlinks, momentum dumps) for systematics;
    #: not written to the rows
    events: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def m(self) -> int:
        return self.time.shape[0]

    @property
    def counts(self) -> np.ndarray:
        return self.mask.sum(axis=1)

    def first(self) -> np.ndarray:
        """(m,) time of the first real observation."""
        return np.where(self.mask, self.time, np.inf).min(axis=1)

    def last(self) -> np.ndarray:
        """(m,) time of the last real observation."""
        return np.where(self.mask, self.time, -np.inf).max(axis=1)


@dataclass
class Simulated:
    """Values of one class on a cadence, ready to become rows."""

    cadence: Cadence
    value: np.ndarray  # (m, L) flux or magnitude as the survey's value_kind says
    error: np.ndarray  # (m, L) 1-sigma uncertainty
    meta: dict[str, np.ndarray | list] = field(default_factory=dict)  # (m,) each


def balanced_labels(classes: tuple[str, ...], n: int, first_index: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Labels of light curves first_index .. first_index + n - 1: the classes in turn
    (so every class appears once n >= number of classes, and counts differ by at most one
    before any preprocessing rejection), shuffled within the batch."""
    order = (first_index + np.arange(n)) % len(classes)
    return np.asarray(classes, dtype=object)[rng.permutation(order)]


class SurveySimulator:
    """Base class of survey simulators (`SurveyPlugin.simulator()`).

    Subclasses implement `cadence` and `light_curves`; they may set `classes` (default:
    the survey's taxonomy), `bands` (band names that `Cadence.band` indexes; default: the
    survey's bands in order) and `chunk_size`, the batch size the driver generates at once.
    The output of a given seed depends on `chunk_size`, so it is a fixed property of the
    simulator, chosen so that one chunk stays within a few hundred MB.
    """

    chunk_size: int = 256

    def __init__(self, survey):
        self.survey = survey

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.survey.taxonomy.classes)

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.survey.bands)

    def cadence(self, m: int, rng: np.random.Generator) -> Cadence:
        raise NotImplementedError

    def light_curves(self, label: str, cadence: Cadence,
                     rng: np.random.Generator) -> Simulated:
        raise NotImplementedError

    def describe(self) -> dict:
        """What the simulator produces, for `simulation.json`."""
        return {"classes": list(self.classes), "bands": list(self.bands),
                "value_kind": self.survey.value_kind, "chunk_size": self.chunk_size}

    def simulate(self, n: int, rng: np.random.Generator, *, first_index: int = 0,
                 id_prefix: str = "sim") -> list[Row]:
        """n labeled light curves as canonical rows, object ids `{id_prefix}-{index:09d}`
        counting from `first_index`."""
        labels = balanced_labels(self.classes, n, first_index, rng)
        rows: list[Row | None] = [None] * n
        for label in self.classes:
            where = np.flatnonzero(labels == label)
            if where.size == 0:
                continue
            cadence = self.cadence(where.size, rng)
            simulated = self.light_curves(label, cadence, rng)
            for j, row in zip(where, self._rows(label, simulated), strict=True):
                row["object_id"] = f"{id_prefix}-{first_index + j:09d}"
                rows[j] = row
        return rows  # type: ignore[return-value]

    def _rows(self, label: str, sim: Simulated) -> list[Row]:
        cad = sim.cadence
        value = sim.value.astype(np.float32)
        error = sim.error.astype(np.float32)
        names = np.asarray(self.bands)
        meta_columns = {k: (v.tolist() if isinstance(v, np.ndarray) else list(v))
                        for k, v in {**cad.meta, **sim.meta}.items()}
        metas = [dict(zip(meta_columns, values, strict=True))
                 for values in zip(*meta_columns.values(), strict=True)]
        metas = metas or [{} for _ in range(cad.m)]
        rows = []
        for i in range(cad.m):
            keep = cad.mask[i]
            time = cad.time[i, keep]
            band = (np.full(time.size, names[0]) if cad.band is None
                    else names[cad.band[i, keep]])
            rows.append({
                "object_id": "", "survey": self.survey.name,
                "time": np.ascontiguousarray(time, dtype=np.float64),
                "value": np.ascontiguousarray(value[i, keep]),
                "error": np.ascontiguousarray(error[i, keep]),
                "band": band, "value_kind": self.survey.value_kind, "label": label,
                "meta": metas[i],
            })
        return rows
