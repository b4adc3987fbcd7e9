"""Done-when: peak RSS of `lcfm pretrain` on 80k simulated MACHO light curves within 1.25x
of that on 10k (issue 10, "Peak memory must not grow with the number of light curves").

Tiny Astromer (the plugin's `tiny` overrides), 50 steps, batch 32, the command's defaults
otherwise; each run is one child process measured by the kernel (os.wait4)."""

from __future__ import annotations

import json
import sys
import tempfile

from _measure import commit, measure, python, save, simulated

SIZES = (10_000, 80_000)


def main() -> None:
    from lcfm.registry import get_model

    overrides = [x for k, v in get_model("astromer").tiny.items()
                 for x in ("--config", f"{k}={json.dumps(v)}")]
    extra = sys.argv[1:]  # e.g. --eval-every 25 where the command has it
    runs = {}
    for n in SIZES:
        data = simulated("macho", n)
        with tempfile.TemporaryDirectory() as tmp:
            result = measure([python(), "-m", "lcfm_cli", "pretrain", "--survey", "macho",
                              "--data", str(data), "--model", "astromer-v2",
                              "--max-steps", "50", "--batch-size", "32",
                              "--output", f"{tmp}/run", *overrides, *extra])
        if result["returncode"]:
            raise SystemExit(f"pretrain on {n} failed:\n{result['output']}")
        result["output"] = result["output"].strip().splitlines()[-1]
        runs[str(n)] = result
    ratio = runs[str(SIZES[1])]["peak_rss_mb"] / runs[str(SIZES[0])]["peak_rss_mb"]
    save("pretrain_memory", {"commit": commit(), "runs": runs,
                             "rss_ratio_80k_over_10k": round(ratio, 3),
                             "target": "<= 1.25", "met": ratio <= 1.25})


if __name__ == "__main__":
    main()
