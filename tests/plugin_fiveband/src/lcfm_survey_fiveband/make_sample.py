"""Write a sample of the five-band example survey in its native files
(`python -m lcfm_survey_fiveband.make_sample FOLDER [N] [SEED]`).

Light curves come from the survey's simulator (simulate.py) and are written as the survey's
CSV files (`lightcurves_<k>.csv`: object_id,mjd,band,mag,magerr) with the label catalogue
`labels.csv` (object_id,class,ra,dec,period) beside them. With `extras`, three objects show
what an ingest counts: one whose catalogue class is unknown to the taxonomy ("BLAP", counted
in report.json's labels_unknown), one absent from the catalogue (unlabelled) and one with
too few observations (rejected). The bundled sample (sample/) is `write_sample(SAMPLE, 8)`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).with_name("sample")


def write_sample(folder: Path, n: int = 8, seed: int = 4, *, files: int = 2,
                 extras: bool = True) -> Path:
    from lcfm_survey_fiveband import FiveBandSurvey

    survey = FiveBandSurvey()
    rows = survey.simulator().simulate(n + (2 if extras else 0),
                                       np.random.default_rng(seed), id_prefix="fb")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    catalogue = ["object_id,class,ra,dec,period"]
    parts: list[list[str]] = [["object_id,mjd,band,mag,magerr"] for _ in range(files)]
    for k, row in enumerate(rows):
        meta, raw = row["meta"], row["meta"]["raw_class"]
        if extras and k == n:
            raw = "BLAP"  # not in the taxonomy: counted, kept unlabelled
        if not (extras and k == n + 1):  # the last one has no catalogue entry
            catalogue.append(f"{row['object_id']},{raw},{meta['ra']:.5f},{meta['dec']:.5f},"
                             f"{meta['sim_period']:.6f}")
        lines = parts[k % files]
        for t, v, e, b in zip(row["time"], row["value"], row["error"], row["band"],
                              strict=True):
            lines.append(f"{row['object_id']},{t:.5f},{b},{v:.4f},{e:.4f}")
    if extras:  # too few observations: rejected by min_points
        parts[0] += [f"fb-short,{51100.0 + d:.5f},r,17.2000,0.0200" for d in range(3)]
    for k, lines in enumerate(parts):
        (folder / f"lightcurves_{k + 1}.csv").write_text("\n".join(lines) + "\n")
    (folder / "labels.csv").write_text("\n".join(catalogue) + "\n")
    return folder


if __name__ == "__main__":
    args = sys.argv[1:]
    print(write_sample(Path(args[0]) if args else SAMPLE,
                       int(args[1]) if len(args) > 1 else 8,
                       int(args[2]) if len(args) > 2 else 4))
