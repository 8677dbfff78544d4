#!/usr/bin/env bash
# The default toy2d runs behind docs/toy2d.md's table and docs/mpi.md's table, one after another
# (each on both cores): every dataset at the default flags (seed 0, --threads 2), seed 1 of the
# 8 gaussians, the 8 gaussians on one thread, and, when mpirun is there, on 2 ranks of one thread
# each (seeds 0 and 1).
#
# Usage: reference_runs.sh <build folder> <output folder>
# Writes <output>/datasets.md and <output>/mpi.md (the tables), keeps each run's metrics.json as
# <output>/<name>-metrics.json and its eval_time.csv (training seconds: the clock of the CD steps
# alone, evaluations excluded) as <output>/<name>-eval_time.csv.
set -euo pipefail
build=$(realpath "$1") out=$2
bin=$build/experiments/toy2d
mkdir -p "$out"
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT

run() {  # name, then flags (the launcher first, if any)
  local name=$1
  shift
  echo "toy2d reference run: $name ($*)" >&2
  "$@" --out "$runs/$name" >"$runs/$name.log" 2>&1 || { cat "$runs/$name.log" >&2; exit 1; }
  local dir
  dir=$(dirname "$(find "$runs/$name" -name metrics.json | head -1)")
  cp "$dir/metrics.json" "$out/$name-metrics.json"
  cp "$dir/eval_time.csv" "$out/$name-eval_time.csv"
}
for d in 8gaussians checkerboard rings moons 2spirals pinwheel; do run "$d" "$bin" --dataset "$d"; done
run 8gaussians-seed1 "$bin" --seed 1
run 8gaussians-threads1 "$bin" --threads 1
have_mpi=0
if command -v mpirun >/dev/null && [ -x "$build/experiments/toy2d" ]; then
  mpi=(mpirun -np 2 --oversubscribe)
  [ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
  run 8gaussians-ranks2 "${mpi[@]}" "$bin" --threads 1
  run 8gaussians-ranks2-seed1 "${mpi[@]}" "$bin" --threads 1 --seed 1
  have_mpi=1
fi

num() { grep -o "\"$2\": [-0-9.e+]*" "$out/$1-metrics.json" | head -1 | awk '{print $2}'; }
secs() { tail -1 "$out/$1-eval_time.csv" | cut -d, -f2; }
fmt() { [ -z "$2" ] && echo "n/a" || printf "%.${1}f" "$2"; }
{
  echo "| dataset | test NLL, model (exact) | test NLL, data density | gap | MMD² (samples vs test) | training s |"
  echo "|---|---:|---:|---:|---:|---:|"
  for d in 8gaussians checkerboard rings moons 2spirals pinwheel; do
    echo "| $d | $(fmt 4 "$(num "$d" test_nll_model)") | $(fmt 4 "$(num "$d" test_nll_data)") |" \
      "$(fmt 3 "$(num "$d" nll_gap)") | $(fmt 4 "$(num "$d" mmd2_samples_vs_test)") | $(fmt 1 "$(secs "$d")") |"
  done
} >"$out/datasets.md"
{
  echo "| run | cores | training s (seed 0) | test NLL gap (seed 0, seed 1) |"
  echo "|---|---:|---:|---|"
  echo "| serial, \`--threads 2\` (the default) | 2 | $(fmt 1 "$(secs 8gaussians)") |" \
    "$(fmt 3 "$(num 8gaussians nll_gap)"), $(fmt 3 "$(num 8gaussians-seed1 nll_gap)") |"
  echo "| serial, \`--threads 1\` | 1 | $(fmt 1 "$(secs 8gaussians-threads1)") |" \
    "$(fmt 3 "$(num 8gaussians-threads1 nll_gap)") |"
  if [ $have_mpi = 1 ]; then
    echo "| \`mpirun -np 2 ... --threads 1\` | 2 | $(fmt 1 "$(secs 8gaussians-ranks2)") |" \
      "$(fmt 3 "$(num 8gaussians-ranks2 nll_gap)"), $(fmt 3 "$(num 8gaussians-ranks2-seed1 nll_gap)") |"
  fi
} >"$out/mpi.md"
cat "$out/datasets.md" "$out/mpi.md"
