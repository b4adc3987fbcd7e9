"""Run a command and measure it: wall seconds, CPU seconds (user + system, the child and
its own children) and peak resident memory, from the kernel's accounting (os.wait4), so
the numbers include start-up and do not depend on sampling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def measure(cmd: list[str], cwd: str | Path | None = None, env: dict | None = None) -> dict:
    """{"wall_s", "cpu_s", "peak_rss_mb", "returncode", "output"} of one command.

    The peak RSS is that of the largest process of the tree (ru_maxrss of wait4 covers the
    child and the descendants it waited for, as a maximum, not a sum)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    # read before waiting: a full pipe would block the child
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "returncode": proc.returncode,
            "output": output[-2000:]}


def python() -> str:
    return sys.executable


def data_dir() -> Path:
    """Where simulated corpora are cached between runs (they are large: 80k MACHO curves
    take ~370 MB)."""
    return Path(os.environ.get("LCFM_BENCH_DATA", "/tmp/lcfm-bench-data"))


def simulated(survey: str, n: int) -> Path:
    """A folder of `n` simulated light curves of `survey` (seed 0), made once."""
    path = data_dir() / f"{survey}-{n}"
    if not (path / "simulation.json").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        result = measure([python(), "-m", "lcfm_cli", "simulate", "--survey", survey,
                          "--n", str(n), "--output", str(path)])
        if result["returncode"]:
            raise SystemExit(f"simulate {survey} {n} failed:\n{result['output']}")
    return path


def save(name: str, result: dict) -> None:
    """Write `result` as benchmarks/results/<label>/<name>.json (label from LCFM_BENCH_LABEL,
    e.g. "before" or "after") and print it."""
    label = os.environ.get("LCFM_BENCH_LABEL", "latest")
    out = ROOT / "results" / label / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def commit() -> str:
    """The commit of the code under test (the checkout PYTHONPATH points at, else this one)."""
    import lcfm

    src = Path(lcfm.__file__).resolve().parents[4]
    try:
        out = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "packages"],
                               capture_output=True, text=True).stdout.strip()
        return out + ("+uncommitted" if dirty else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"
