"""A small labeled dataset in the canonical format for engine tests: two MACHO classes
with different light-curve shapes (sinusoid vs. eclipses), several objects each."""

import numpy as np
import pytest
from lcfm.shards import ShardWriter


def labeled_rows(n_objects=24, n_points=60, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_objects):
        label = ("RRab", "EC")[i % 2]
        t = np.sort(rng.uniform(0, 200, n_points))
        period = rng.uniform(0.4, 0.8) if label == "RRab" else rng.uniform(1, 3)
        phase = (t / period) % 1
        if label == "RRab":
            mag = -0.4 * np.sin(2 * np.pi * phase)
        else:
            mag = 0.8 * (np.abs(phase - 0.5) < 0.06)
        mag = mag - 5 + rng.normal(0, 0.03, n_points)
        for band in ("R", "B"):
            rows.append({"object_id": f"1.{3000 + i}.{i}", "survey": "macho", "time": t,
                         "value": mag.astype(np.float32),
                         "error": np.full(n_points, 0.03, np.float32),
                         "band": np.array([band] * n_points), "value_kind": "mag",
                         "label": label, "meta": {"field": 1}})
    return rows


@pytest.fixture(scope="session")
def make_labeled_rows():
    return labeled_rows


@pytest.fixture(scope="session")
def labeled_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("labeled")
    with ShardWriter(path) as writer:
        for row in labeled_rows():
            writer.add(row)
    return path
