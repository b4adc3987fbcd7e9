"""A batch of canonical light curves as flat arrays plus offsets (`FlatRows`).

This is what the streaming data path hands to model collators: the observations of all
light curves of a batch concatenated into one array per column, row i owning
`[offsets[i], offsets[i + 1])`, and bands as small integer codes into `band_names`. A
collator can then normalise, window and pad a whole batch with numpy operations instead of
a Python loop per light curve or per point (Arrow's list layout is exactly this, so a
Parquet row group converts without copying element by element).

`FlatRows` also behaves as a sequence of row dicts (`len`, indexing, iteration), so code
written against the row-dict contract (`ModelPlugin.collator`) keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: row-dict keys carried into `FlatRows.extras`, with the value of a row that lacks one
#: (None: every row must have it): ATCAT's metadata vector, the redshift augmentation's
#: wavelength scale, the time-shift augmentation's offset in days
ROW_EXTRAS = {"metadata": None, "wavelength_scale": 1.0, "time_shift": 0.0}


@dataclass
class FlatRows:
    offsets: np.ndarray  # (rows + 1,) int64
    time: np.ndarray  # (points,) float64
    value: np.ndarray  # (points,) float32
    error: np.ndarray  # (points,) float32
    band: np.ndarray  # (points,) int16 codes into band_names
    band_names: tuple[str, ...]
    object_id: list[str]
    label: list[str | None]
    value_kind: list[str]
    survey: list[str]
    meta: list[dict] = field(default_factory=list)
    #: per-row extras carried along (e.g. "metadata" vectors of ATCAT), row-aligned
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    # ---- sequence of row dicts -------------------------------------------------------
    def __len__(self) -> int:
        return len(self.object_id)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        start, stop = int(self.offsets[index]), int(self.offsets[index + 1])
        names = np.asarray(self.band_names, dtype=object)
        row = {"index": index, "object_id": self.object_id[index],
               "survey": self.survey[index], "time": self.time[start:stop],
               "value": self.value[start:stop], "error": self.error[start:stop],
               "band": names[self.band[start:stop]].astype(str),
               "value_kind": self.value_kind[index], "label": self.label[index],
               "meta": self.meta[index] if self.meta else {}}
        for key, values in self.extras.items():
            row[key] = values[index]
        return row

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # ---- construction --------------------------------------------------------------
    @classmethod
    def from_rows(cls, rows: Sequence[Mapping], band_names: Sequence[str] | None = None
                  ) -> FlatRows:
        """Flatten row dicts (the reverse of indexing). Band names not in `band_names` are
        appended in order of first appearance."""
        if isinstance(rows, FlatRows):
            return rows
        names = list(band_names or ())
        lookup = {n: i for i, n in enumerate(names)}
        lengths = np.array([len(r["time"]) for r in rows], dtype=np.int64)
        codes = []
        for r in rows:
            present, inverse = np.unique(np.asarray(r["band"]).astype(str), return_inverse=True)
            for b in map(str, present):
                if b not in lookup:
                    lookup[b] = len(names)
                    names.append(b)
            codes.append(np.array([lookup[str(b)] for b in present], dtype=np.int16)[inverse])
        # per-row values that augmentations and encoders attach to row dicts: carried
        # along (a row without one gets the neutral value) so no collator loses them
        extras_keys = [k for k in ROW_EXTRAS if any(k in r for r in rows)]

        def cat(key, dtype):
            parts = [np.asarray(r[key], dtype=dtype) for r in rows]
            return np.concatenate(parts) if parts else np.zeros(0, dtype)

        return cls(offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                   time=cat("time", np.float64), value=cat("value", np.float32),
                   error=cat("error", np.float32),
                   band=np.concatenate(codes) if codes else np.zeros(0, np.int16),
                   band_names=tuple(names),
                   object_id=[str(r.get("object_id", f"row {i}")) for i, r in enumerate(rows)],
                   label=[r.get("label") for r in rows],
                   value_kind=[r.get("value_kind", "mag") for r in rows],
                   survey=[r.get("survey", "") for r in rows],
                   meta=[r.get("meta") or {} for r in rows],
                   extras={k: np.stack([np.asarray(r.get(k, ROW_EXTRAS[k])) for r in rows])
                           for k in extras_keys})

    def take(self, indices: Sequence[int]) -> FlatRows:
        """The rows at `indices`, in that order, as a new FlatRows (vectorised gather)."""
        indices = np.asarray(indices, dtype=np.int64)
        starts, stops = self.offsets[indices], self.offsets[indices + 1]
        lengths = stops - starts
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # point index of every kept observation, without a Python loop per row
        points = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        pick = [int(i) for i in indices]
        return FlatRows(offsets=offsets, time=self.time[points], value=self.value[points],
                        error=self.error[points], band=self.band[points],
                        band_names=self.band_names,
                        object_id=[self.object_id[i] for i in pick],
                        label=[self.label[i] for i in pick],
                        value_kind=[self.value_kind[i] for i in pick],
                        survey=[self.survey[i] for i in pick],
                        meta=[self.meta[i] for i in pick] if self.meta else [],
                        extras={k: v[indices] for k, v in self.extras.items()})

    def wavelengths(self, bands: Mapping[str, float]) -> np.ndarray:
        """Central wavelength of every observation, (points,) float32, from a band -> Angstrom
        mapping (a one-line KeyError-free lookup through the codes)."""
        table = np.array([float(bands.get(n, np.nan)) for n in self.band_names], np.float32)
        return table[self.band] if self.band.size else np.zeros(0, np.float32)


def segment_ids(offsets: np.ndarray) -> np.ndarray:
    """Row number of every observation, (points,) int64: the inverse of `offsets`."""
    lengths = np.diff(offsets)
    return np.repeat(np.arange(lengths.size), lengths)


__all__ = ["FlatRows", "segment_ids"]
