"""Vectorised building blocks of the model collators (issue 10, "fast collation").

Every collator turns a batch -- a list of canonical row dicts or an `lcfm.flat.FlatRows` --
into padded (batch, length) tensors. Here the batch is handled as flat arrays plus offsets:
windows are gathered with one index array, per-row statistics are `np.bincount` sums over
segment ids, per-row random permutations are ranks of random keys within each segment, and
padding is one scatter `out[row, position] = value`. No Python loop runs per point; the
only loops per row are over cheap Python lists (labels, object ids).

Padding is always to the longest window of the batch, never to a fixed width, so short
light curves cost only what they contain.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np
from lcfm.bands import band_salts, band_slots, split_bands
from lcfm.exceptions import ConfigError, DataError
from lcfm.flat import FlatRows

POINT_FIELDS = ("time", "value", "error")


def as_flat(rows, who: str, *, need_band: bool = False) -> FlatRows:
    """The batch as `FlatRows`, after checking that every row has its point arrays and
    that they agree in length (a list is converted with `FlatRows.from_rows`).

    Rows without a usable `band` get the band "" unless `need_band` (single-band models
    read no band)."""
    if isinstance(rows, FlatRows):
        if len(rows) == 0:
            raise DataError(f"{who}: empty batch")
        total = int(rows.offsets[-1])
        sizes = {k: getattr(rows, k).size for k in (*POINT_FIELDS, "band")}
        if any(size != total for size in sizes.values()):
            raise DataError(f"{who}: FlatRows point arrays differ in length from its offsets "
                            f"({total} points): {sizes}")
        return rows
    if len(rows) == 0:
        raise DataError(f"{who}: empty batch")
    fixed = None
    for index, row in enumerate(rows):
        object_id = row.get("object_id", f"#{index}")
        for name in POINT_FIELDS + (("band",) if need_band else ()):
            if name not in row or row[name] is None:
                raise DataError(f"{who}: row {index} (object_id={object_id!r}) has no {name!r}")
        n = len(row["time"])
        lengths = {k: len(row[k]) for k in POINT_FIELDS}
        band = row.get("band")
        if need_band:
            lengths["band"] = len(band)
        if any(size != n for size in lengths.values()):
            raise DataError(f"{who}: row {index} (object_id={object_id!r}) has point arrays of "
                            f"different lengths {lengths}")
        if band is None or len(band) != n:  # single-band model: the band is not read
            fixed = fixed if fixed is not None else list(rows)
            fixed[index] = {**row, "band": np.full(n, "", dtype="<U1")}
    return FlatRows.from_rows(rows if fixed is None else fixed)


def describe(flat: FlatRows, row: int) -> str:
    """'row i (object_id=...)', for one-line errors."""
    return f"row {row} (object_id={flat.object_id[row]!r})"


def require_points(flat: FlatRows, who: str) -> None:
    """A light curve without observations cannot be collated: name the first one."""
    empty = np.flatnonzero(flat.lengths == 0)
    if empty.size:
        raise DataError(f"{who}: {describe(flat, int(empty[0]))} has no observations")


def window_starts(lengths: np.ndarray, width: int, rng: np.random.Generator | None
                  ) -> np.ndarray:
    """First point of each row's window of at most `width` points: uniform over the
    possible starts with `rng` (one draw per row, in one call), else 0 (the earliest)."""
    if rng is None:
        return np.zeros(lengths.size, dtype=np.int64)
    span = np.maximum(lengths - width, 0) + 1
    return np.minimum((rng.random(lengths.size) * span).astype(np.int64), span - 1)


class Windows:
    """The kept points of a batch: row i keeps `lengths[i]` points from `starts[i]`.

    `source` indexes the batch's flat arrays, `row` and `position` place each kept point
    in the padded (batch, width) output; `offsets` delimit the rows in kept order."""

    def __init__(self, flat: FlatRows, starts: np.ndarray, width: int | None):
        total_lengths = flat.lengths
        lengths = total_lengths - starts
        if width is not None:
            lengths = np.minimum(lengths, width)
        self.batch = len(flat)
        self.lengths = lengths.astype(np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        self.row = np.repeat(np.arange(self.batch), self.lengths)
        self.position = np.arange(self.offsets[-1]) - self.offsets[:-1][self.row]
        self.source = (flat.offsets[:-1] + starts)[self.row] + self.position
        self.width = int(self.lengths.max()) if self.batch else 0

    def gather(self, values: np.ndarray) -> np.ndarray:
        return values[self.source]

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Per-row sum, (batch,) float64."""
        return np.bincount(self.row, weights=values, minlength=self.batch)

    def mean(self, values: np.ndarray) -> np.ndarray:
        return self.sum(values) / np.maximum(self.lengths, 1)

    def first(self, values: np.ndarray) -> np.ndarray:
        """Each row's first kept value, (batch,)."""
        return values[self.offsets[:-1]]

    def pad(self, values: np.ndarray, dtype, fill=0, width: int | None = None) -> np.ndarray:
        """Scatter kept-order `values` into a (batch, width) array filled with `fill`."""
        return scatter(self.row, self.position, values, (self.batch, width or self.width),
                       dtype, fill)

    def valid(self, width: int | None = None) -> np.ndarray:
        """attention_mask: 1 on kept points, 0 on padding, (batch, width) int64."""
        return self.pad(np.ones(self.row.size, np.int64), np.int64, width=width)

    def ranks(self, keys: np.ndarray) -> np.ndarray:
        """Rank of each point's key within its row (0 = smallest): with uniform random keys
        the rank is a uniformly random permutation of each row, as `rng.permutation(n)`."""
        order = np.argsort(self.row + keys, kind="stable")  # keys in [0, 1): rows stay apart
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size) - self.offsets[:-1][self.row[order]]
        return rank

    def pick_in_row(self, uniform: np.ndarray) -> np.ndarray:
        """For each point, the kept-order index of a uniformly drawn point of its own row."""
        lengths = self.lengths[self.row]
        within = np.minimum((uniform * lengths).astype(np.int64), lengths - 1)
        return self.offsets[:-1][self.row] + within


def scatter(row: np.ndarray, position: np.ndarray, values, shape: tuple[int, int], dtype,
            fill=0) -> np.ndarray:
    """A `shape` array filled with `fill`, with `values[k]` at (row[k], position[k])."""
    out = np.full(shape, fill, dtype=dtype)
    out[row, position] = values
    return out


def object_keys(flat: FlatRows) -> np.ndarray:
    """(rows,) uint64 hash of each row's object_id."""
    return np.array([zlib.crc32(str(o).encode()) for o in flat.object_id], dtype=np.uint64)


def object_uniforms(flat: FlatRows, windows: Windows, seed: int, stream: int,
                    keys: np.ndarray | None = None) -> np.ndarray:
    """Uniforms in [0, 1) per kept point that depend only on (seed, object_id, position in
    the window, stream): the same object gets the same numbers in any batch, vectorised by
    hashing (splitmix64) instead of one generator per row. `keys` (rows,) uint64 replaces
    the object_id hashes (`BandLayout.keys`: per-band rows of one object told apart)."""
    keys = object_keys(flat) if keys is None else np.asarray(keys, dtype=np.uint64)
    mix = np.uint64((seed * 0x9E3779B1 + stream * 0x85EBCA77 + 1) & 0xFFFFFFFF) << np.uint64(32)
    z = (keys ^ mix)[windows.row] + windows.position.astype(np.uint64) * np.uint64(
        0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def is_kind(flat: FlatRows, kind: str) -> np.ndarray:
    """(batch,) bool: rows whose value_kind is `kind`."""
    return np.array([k == kind for k in flat.value_kind], dtype=bool)


def label_ids(flat: FlatRows, label2id: Mapping[str, int], who: str,
              missing: int | None) -> np.ndarray:
    """(batch,) int64 class ids; rows without a label get `missing` (an error when None)."""
    ids = np.empty(len(flat), dtype=np.int64)
    for i, label in enumerate(flat.label):
        if label is None and missing is not None:
            ids[i] = missing
        elif label is None or label not in label2id:
            raise DataError(f"{who}: {describe(flat, i)} has label {label!r}, which is not in "
                            f"label2id ({', '.join(map(str, label2id))})")
        else:
            ids[i] = label2id[label]
    return ids


def row_values(flat: FlatRows, key: str, default: float) -> np.ndarray:
    """(batch,) float64 per-row scalar `key` from `flat.extras` (e.g. the
    `wavelength_scale` of the redshifting augmentation; `FlatRows.from_rows` carries a list
    row's own entry there), `default` for a batch without it."""
    values = flat.extras.get(key)
    return (np.full(len(flat), default) if values is None
            else np.asarray(values, dtype=np.float64))


class BandLayout:
    """What a collator feeds its model (`lcfm.bands`, step 3): `flat` is the batch itself for
    band_combine="joint" and one row per (light curve, band) otherwise; `entries` holds the
    numpy arrays the model combines them with (`band_group`, and `band_slot` for
    "concat"); `objects` is the original batch (labels and extra features are per light
    curve)."""

    def __init__(self, flat: FlatRows, config, who: str):
        self.objects, self.entries = flat, {}
        self._parent = self._salt = None
        mode = getattr(config, "band_combine", "joint")
        if mode == "joint":
            self.flat = flat
            return
        self.flat, parent, code = split_bands(flat)
        self._parent, self._salt = parent, band_salts(flat, parent, code)
        self.entries["band_group"] = parent
        if mode == "concat":
            names = list(config.band_names)
            if not names:
                raise ConfigError(f"{who}: band_combine='concat' needs the model's band_names "
                                  f"(set when it is built from data, or --config "
                                  f"band_names=[...])")
            self.entries["band_slot"] = band_slots(flat, code, names, who)

    def keys(self) -> np.ndarray:
        """(rows of `flat`,) uint64 keys of `object_uniforms`: the object's hash, and for a
        band of a multi-band object that hash with the band name's (`lcfm.bands.band_salts`)
        so each band draws its own numbers; hashed once per light curve, not per band."""
        keys = object_keys(self.objects)
        if self._parent is None:
            return keys
        return keys[self._parent] ^ (self._salt << np.uint64(32))


def extra_features(flat: FlatRows, config, who: str) -> np.ndarray | None:
    """(batch, F) float32 per-object features from `flat.extras["extra_features"]` (the
    engine's standardised `lcfm features` table), NaN/inf as 0; None when the batch has none
    and the model reads none. A width other than `config.num_extra_features` is a DataError."""
    wanted = int(getattr(config, "num_extra_features", 0) or 0)
    values = flat.extras.get("extra_features")
    if values is None:
        if wanted:
            raise DataError(f"{who}: the model reads num_extra_features={wanted} per object but "
                            f"the batch has no extra_features (pass --features)")
        return None
    values = np.asarray(values, dtype=np.float32).reshape(len(flat), -1)
    if values.shape[1] != wanted:
        raise DataError(f"{who}: extra_features has {values.shape[1]} values per object, the "
                        f"model reads num_extra_features={wanted}")
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)


def first_bad_row(bad: np.ndarray, row: np.ndarray) -> int | None:
    """Row of the first True entry of a per-point flag array, or None."""
    hits = np.flatnonzero(bad)
    return int(row[hits[0]]) if hits.size else None


__all__ = ["BandLayout", "Windows", "as_flat", "describe", "extra_features", "first_bad_row",
           "is_kind", "label_ids", "object_keys", "object_uniforms", "require_points",
           "row_values", "scatter", "window_starts"]

