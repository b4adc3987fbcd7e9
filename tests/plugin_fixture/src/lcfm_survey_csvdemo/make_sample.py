"""Write the bundled demo sample (`python -m lcfm_survey_csvdemo.make_sample [PATH]`).

Synthetic, deterministic demo light curves in this package's CSV format: a pulsating star
(sawtooth), an eclipsing binary, a constant star and an unlabelled one, in bands g and r,
plus a few deliberately bad observations so that an ingest shows rejections.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).with_name("sample") / "demo.csv"


def demo_lines(seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = ["object_id,time,mag,err,band,label"]
    stars = [("demo-001", "RRab", 0.57), ("demo-002", "EW", 0.36), ("demo-003", "CONST", 1.0),
             ("demo-004", "unknown", 3.1), ("demo-005", "RRc", 0.31)]
    for object_id, label, period in stars:
        for band, offset in (("g", 0.0), ("r", -0.3)):
            time = np.sort(rng.uniform(0.0, 60.0, 12)).round(5)
            phase = (time / period) % 1.0
            if label.startswith("RR"):
                signal = 0.8 * phase - 0.4
            elif label == "EW":
                signal = 0.3 * np.abs(np.sin(2 * np.pi * phase))
            elif label == "unknown":
                signal = 0.1 * np.sin(2 * np.pi * phase)
            else:
                signal = np.zeros_like(phase)
            mag = 15.0 + offset + signal + rng.normal(0.0, 0.02, time.size)
            for t, m in zip(time, mag, strict=True):
                lines.append(f"{object_id},{t:.5f},{m:.4f},0.020,{band},{label}")
    # bad observations, each counted at ingest: uncertainty > 1, NaN magnitude, duplicate epoch
    lines.append("demo-001,61.00000,15.1000,1.500,g,RRab")
    lines.append("demo-002,61.50000,nan,0.020,g,EW")
    lines.append(lines[1].rsplit(",", 4)[0] + ",15.2000,0.020,g,RRab")
    # an object with too few observations (rejected: fewer than 5)
    lines += [f"demo-006,{t:.1f},16.0000,0.030,r,CONST" for t in (1.0, 2.0, 3.0)]
    return lines


def main(path: Path = SAMPLE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(demo_lines()) + "\n")
    return path


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE))
