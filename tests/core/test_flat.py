"""FlatRows: row dicts <-> flat arrays with band codes, gathers, and per-row extras."""

import numpy as np
from lcfm.flat import FlatRows, segment_ids


def _rows():
    return [{"object_id": "a", "time": np.arange(3.0), "value": np.ones(3),
             "error": np.ones(3), "band": np.array(["g", "r", "g"]), "label": "X",
             "time_shift": 2.5},
            {"object_id": "b", "time": np.arange(2.0), "value": np.zeros(2),
             "error": np.ones(2), "band": np.array(["i", "i"]), "label": None}]


def test_round_trip_codes_and_take():
    flat = FlatRows.from_rows(_rows())
    assert flat.band_names == ("g", "r", "i") and flat.band.tolist() == [0, 1, 0, 2, 2]
    assert flat.offsets.tolist() == [0, 3, 5] and segment_ids(flat.offsets).tolist() == [
        0, 0, 0, 1, 1]
    assert flat[1]["band"].tolist() == ["i", "i"] and flat[0]["label"] == "X"
    swapped = flat.take([1, 0])
    assert swapped.object_id == ["b", "a"] and swapped.band.tolist() == [2, 2, 0, 1, 0]
    assert flat.wavelengths({"g": 4800.0, "r": 6200.0, "i": 7500.0}).tolist() == [
        4800.0, 6200.0, 4800.0, 7500.0, 7500.0]


def test_augmentation_extras_survive_flattening():
    """A row without the time-shift offset gets 0 days, and the offsets follow `take`."""
    flat = FlatRows.from_rows(_rows())
    assert flat.extras["time_shift"].tolist() == [2.5, 0.0]
    assert flat.take([1, 0]).extras["time_shift"].tolist() == [0.0, 2.5]
    assert flat[0]["time_shift"] == 2.5
