#!/bin/bash
# Every Done-when number of issue 10, for the code of one checkout:
#   benchmarks/run_all.sh LABEL [CHECKOUT]
# LABEL names the column (before / after); CHECKOUT (default: this repository) is put first
# on PYTHONPATH, so an older commit checked out with `git worktree add` runs in this venv.
# Results: benchmarks/results/LABEL/*.json; then `python benchmarks/report.py` writes
# RESULTS.md. Simulated corpora are cached in $LCFM_BENCH_DATA (default /tmp/lcfm-bench-data).
set -euo pipefail
LABEL=${1:?label, e.g. before or after}
HERE=$(cd "$(dirname "$0")" && pwd)
CHECKOUT=$(cd "${2:-$HERE/..}" && pwd)
PY=${PYTHON:-$HERE/../.venv/bin/python}
export LCFM_BENCH_LABEL=$LABEL
export PYTHONPATH=$CHECKOUT/packages/core/src:$CHECKOUT/packages/surveys/src:$CHECKOUT/packages/models/src:$CHECKOUT/packages/cli/src
export HF_HUB_OFFLINE=1 PYTHONWARNINGS=ignore
cd "$HERE"
for script in ${SCRIPTS:-startup data_path two_processes pretrain_memory bench_cli}; do
  echo "== $script ($LABEL, $CHECKOUT)"
  "$PY" "$script.py"
done
