"""Done-when: `lcfm surveys` costs under 30% of the CPU time of importing torch and
transformers (issue 10 item 7, light start-up). CPU seconds (user + system) of each child,
best of REPEAT runs (the first run of each warms the page cache)."""

from __future__ import annotations

from _measure import commit, measure, python, save

REPEAT = 3
COMMANDS = {
    "lcfm_surveys": [python(), "-m", "lcfm_cli", "surveys"],
    "lcfm_help": [python(), "-m", "lcfm_cli", "--help"],
    "import_torch_transformers": [python(), "-c", "import torch, transformers"],
}


def main() -> None:
    result: dict = {"commit": commit()}
    for name, cmd in COMMANDS.items():
        runs = [measure(cmd) for _ in range(REPEAT + 1)][1:]
        if any(r["returncode"] for r in runs):
            raise SystemExit(f"{name} failed:\n{runs[0]['output']}")
        result[name] = {"cpu_s": min(r["cpu_s"] for r in runs),
                        "wall_s": min(r["wall_s"] for r in runs),
                        "peak_rss_mb": min(r["peak_rss_mb"] for r in runs)}
    ratio = result["lcfm_surveys"]["cpu_s"] / result["import_torch_transformers"]["cpu_s"]
    result["surveys_over_import"] = round(ratio, 3)
    result["target"] = "< 0.30"
    result["met"] = ratio < 0.30
    save("startup", result)


if __name__ == "__main__":
    main()
