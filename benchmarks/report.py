"""RESULTS.md from results/before/*.json and results/after/*.json (run_all.sh writes them):
one table per Done-when line of issue 10, a "before" and an "after" column."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent
COLUMNS = ("before", "after")


def load(label: str, name: str) -> dict | None:
    path = ROOT / "results" / label / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def cell(label: str, name: str, get) -> str:
    data = load(label, name)
    if data is None:
        return "-"
    try:
        value = get(data)
    except (KeyError, TypeError, IndexError):
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def table(title: str, name: str, rows: list[tuple[str, object]]) -> list[str]:
    commits = " / ".join(cell(c, name, lambda d: d["commit"]) for c in COLUMNS)
    lines = [f"### {title}", "", f"commits (before / after): {commits}", "",
             "| | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    lines += ["| " + label + " | " + " | ".join(cell(c, name, get) for c in COLUMNS) + " |"
              for label, get in rows]
    return lines + [""]


def main() -> None:
    models = sorted(set().union(*[(load(c, "data_path") or {}).get("models", {})
                                  for c in COLUMNS]))
    out = ["# Issue 10: Done-when benchmarks", "",
           "Produced by `benchmarks/run_all.sh LABEL [CHECKOUT]` then `python "
           "benchmarks/report.py`; the raw records are in `results/`. Measured on the "
           "project's 2-core, 23 GiB machine while other work was running on it, so wall-clock "
           "rates are lower bounds (CPU seconds and peak RSS are not affected).", ""]
    out += table("Peak RSS of `lcfm pretrain` (tiny Astromer, 50 steps, batch 32), MB",
                 "pretrain_memory", [
                     ("10k MACHO", lambda d: d["runs"]["10000"]["peak_rss_mb"]),
                     ("80k MACHO", lambda d: d["runs"]["80000"]["peak_rss_mb"]),
                     ("ratio 80k / 10k (target <= 1.25)", lambda d: d["rss_ratio_80k_over_10k"]),
                     ("wall s, 10k", lambda d: d["runs"]["10000"]["wall_s"]),
                     ("wall s, 80k", lambda d: d["runs"]["80000"]["wall_s"])])
    rows = []
    for m in models:
        for survey in ("macho", "elasticc"):
            rows.append((f"{m}, {survey}: light curves per CPU-s (target >= 4000)",
                         lambda d, m=m, s=survey:
                         d["models"][m][s]["light_curves_per_cpu_second"]))
            rows.append((f"{m}, {survey}: light curves per wall-s",
                         lambda d, m=m, s=survey: d["models"][m][s]["light_curves_per_second"]))
    rows.append(("reader", lambda d: next(iter(d["models"].values()))["macho"]["path"]
                 if "path" in next(iter(d["models"].values()))["macho"]
                 else next(iter(d["models"].values()))["macho"]["reader"]))
    out += table("Data path, shards -> collator tensors, one process, one thread "
                 "(paper configurations, one training epoch of 10k MACHO / 4k ELAsTiCC)",
                 "data_path", rows)
    out += table("Padding on simulated ELAsTiCC (padded / all positions of the collated "
                 "batches; target <= 10%)", "data_path",
                 [(m, lambda d, m=m: f"{d['models'][m]['elasticc']['padding_fraction']:.1%}")
                  for m in models])
    out += table("2-process CPU run (`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu "
                 "--num_processes 2`)", "two_processes", [
                     ("pretrain exit status", lambda d: d["pretrain"]["returncode"]),
                     ("pretrain num_processes recorded", lambda d:
                      d["pretrain"]["num_processes_recorded"]),
                     ("predict exit status", lambda d: d["predict"]["returncode"]),
                     ("predict num_processes recorded", lambda d:
                      d["predict"]["num_processes_recorded"]),
                     ("catalog rows / unique objects / objects in data", lambda d:
                      f"{d['predict']['rows']} / {d['predict']['unique_objects']} / "
                      f"{d['predict']['objects_in_data']}"),
                     ("met", lambda d: d["met"])])
    out += table("Start-up CPU seconds (user + system, best of 3)", "startup", [
        ("`lcfm surveys`", lambda d: d["lcfm_surveys"]["cpu_s"]),
        ("`lcfm --help`", lambda d: d["lcfm_help"]["cpu_s"]),
        ("`python -c 'import torch, transformers'`",
         lambda d: d["import_torch_transformers"]["cpu_s"]),
        ("ratio surveys / import (target < 0.30)", lambda d: d["surveys_over_import"])])
    bench = load("after", "bench_cli")
    if bench:
        out += ["### `lcfm bench --survey elasticc --n " + bench["sizes"] + "` (after only)",
                "", f"commit {bench['commit']}", "",
                "| model | data path lc/s | forward lc/s | train lc/s | matmul GFLOP/s | "
                "train fraction of peak | padding | peak RSS MB per size |",
                "|---|---|---|---|---|---|---|---|"]
        for m, r in bench["models"].items():
            rss = " / ".join(f"{p['peak_rss_mb']:.0f}" for p in r["scaling"])
            out.append(f"| {m} ({r['configuration']}) | "
                       f"{r['data_path']['light_curves_per_second']:,.0f} | "
                       f"{r['model_throughput']['forward_per_second']:,.0f} | "
                       f"{r['model_throughput']['train_per_second']:,.0f} | "
                       f"{r['matmul_peak_gflops']:.1f} | {r['train_fraction_of_peak']:.2%} | "
                       f"{r['padding_fraction']:.1%} | {rss} |")
        out.append("")
    notes = ROOT / "NOTES.md"
    if notes.exists():
        out += [notes.read_text()]
    (ROOT / "RESULTS.md").write_text("\n".join(out))
    print((ROOT / "RESULTS.md").read_text())


if __name__ == "__main__":
    main()
