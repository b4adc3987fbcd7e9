"""Which periods can each model's time encoding represent, on a given dataset?

Every lcfm model turns observation times into sinusoids of fixed angular frequencies (days
^-1). A variability period P is visible to the model as a phase only if some channel turns
at least as fast as 2 pi / P. This script measures, for each model's paper configuration
(and any `--config-overrides`), the shortest and longest period its encoding turns through,
by probing the model's own encoding function on a fine time grid (so it stays true when a
model's code changes), beside the dataset's time spans and sampling:

    python benchmarks/time_encodings.py --data DIR [--models astromer,atcat]

ASTRAFier scales its angles by d/T (T = valid steps of each light curve, eqs. 2-3), so its
periods depend on the light curve's length: the dataset's median is used. Prints a Markdown
table; `--json FILE` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import torch

#: the probe: 0-64 days in steps of 1/200 day resolves angular frequencies up to ~600 /day
GRID_DAYS, GRID_STEP = 64.0, 1.0 / 200


def encoding_of(name: str, config, median_points: int):
    """The model's own time-encoding callable: (1, time) days -> (1, time, channels)."""
    if name == "astromer":
        from lcfm_models.astromer.modeling_astromer import time_positional_encoding
        return lambda t: time_positional_encoding(t, config.hidden_size, config.pe_base)
    if name == "astroco":
        from lcfm_models.astroco.modeling_astroco import sinusoidal_time_encoding
        return lambda t: sinusoidal_time_encoding(t, config.hidden_size // 2,
                                                  config.time_encoding_base)
    if name == "astrafier":
        from lcfm_models.astrafier.modeling_astrafier import AstrafierTimeEncoding
        module = AstrafierTimeEncoding(config)
        return lambda t: module(t, torch.tensor([median_points]))
    if name == "atcat":
        from lcfm_models.atcat.embeddings_atcat import time_frequencies
        omega = time_frequencies(config).double()
        return lambda t: torch.cat([torch.sin(t[..., None] * omega),
                                    torch.cos(t[..., None] * omega)], dim=-1)
    raise SystemExit(f"time_encodings: no probe for model {name!r}")


def angular_frequencies(encode) -> np.ndarray:
    """Per channel, omega = RMS(dE/dt) / RMS(E - mean E) on the grid: exact for a sinusoid
    that completes many turns on the grid; channels slower than the grid resolves get a
    rough (low) estimate, which does not change the fastest channel."""
    times = torch.arange(0.0, GRID_DAYS, GRID_STEP, dtype=torch.float64)[None]
    values = encode(times)[0].double().numpy()  # (time, channels)
    slope = np.diff(values, axis=0) / GRID_STEP
    spread = values - values.mean(axis=0)
    rms = np.sqrt((spread ** 2).mean(axis=0))
    return np.sqrt((slope ** 2).mean(axis=0)) / np.maximum(rms, 1e-12)


def dataset_sampling(data: Path) -> dict:
    frame = pl.scan_parquet(str(data / "*.parquet")).select(
        span=pl.col("time").list.max() - pl.col("time").list.min(),
        points=pl.col("time").list.len(),
        bands=pl.col("band").list.n_unique(),
        gap=pl.col("time").list.eval(pl.element().floor().unique().sort().diff().drop_nulls())
        .list.median(),
    ).collect()
    return {"light_curves": frame.height,
            "median_span_days": float(frame["span"].median()),
            "median_points": int(frame["points"].median()),
            "median_points_per_band": float((frame["points"] / frame["bands"]).median()),
            "median_gap_days": float(frame["gap"].median())}


def main() -> None:
    from lcfm.registry import get_model, model_names

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", default=",".join(model_names()))
    parser.add_argument("--config-overrides", action="append", default=[],
                        metavar="MODEL:KEY=VALUE")
    parser.add_argument("--periods", default="0.4,12",
                        help="Period range of interest in days (default: RR Lyrae to Cepheids).")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sampling = dataset_sampling(args.data)
    low, high = (float(p) for p in args.periods.split(","))
    rows = []
    for name in args.models.split(","):
        plugin = get_model(name)
        overrides = {}
        for item in args.config_overrides:
            model, _, pair = item.partition(":")
            if model == name:
                key, _, value = pair.partition("=")
                overrides[key] = json.loads(value)
        config = plugin.make_config(None, **overrides)
        omega = angular_frequencies(encoding_of(name, config, sampling["median_points"]))
        periods = 2 * math.pi / omega[omega > 0]
        rows.append({"model": name, "overrides": overrides,
                     "channels": int(omega.size),
                     "shortest_period_days": float(periods.min()),
                     "channels_in_range": int(((periods >= low) & (periods <= high)).sum()),
                     "channels_faster_than_range": int((periods < low).sum())})
    print(f"data: {args.data} ({sampling['light_curves']} light curves): median span "
          f"{sampling['median_span_days']:.0f} d, {sampling['median_points']} points "
          f"({sampling['median_points_per_band']:.0f} per band), median gap between nights "
          f"{sampling['median_gap_days']:.1f} d\n")
    print(f"| model | channels | shortest period (d) | channels with period in "
          f"{low:g}-{high:g} d |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['channels']} | {row['shortest_period_days']:.2f} | "
              f"{row['channels_in_range']} |")
    if args.json:
        args.json.write_text(json.dumps({"data": sampling, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
