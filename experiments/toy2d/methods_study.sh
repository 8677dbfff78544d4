#!/usr/bin/env bash
# The training methods compared on toy2d at equal cost (issue 18): every method (cd, cd-kl, sm,
# dsm, ssm, ed) on every dataset with the same network (toy2d's default MLP 2-128-128-1, SiLU),
# the same optimiser (Adam, lr 1e-3, essentially constant over the budget) and the same seconds of
# training on one core each (--threads 1, OpenBLAS single-threaded; two runs at a time on this
# 2-core machine), measured exactly: test NLL with log Z by quadrature, its gap to the data's own
# NLL, and the MMD² of Langevin samples against held-out points.
#
# Usage: [METHODS="nce ..."] methods_study.sh <toy2d binary> <output folder> [seconds per run (30)]
#        [datasets ...]   (METHODS: the methods to run, default all; nce is run this way into
#        results/methods-nce/)
# Writes <output>/table.md, table.csv, nll_vs_time.png and nll_vs_time.gp, and keeps every run
# under <output>/runs (the repository keeps the table, the picture and the curves).
set -euo pipefail
bin=$(realpath "$1") out=$2 budget=${3:-30}
shift $(( $# >= 3 ? 3 : $# ))
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(8gaussians 2spirals checkerboard rings moons pinwheel)
read -r -a methods <<<"${METHODS:-cd cd-kl sm dsm ssm ed}"
mkdir -p "$out/runs"
export OPENBLAS_NUM_THREADS=1
jobs=()
for d in "${datasets[@]}"; do
  for m in "${methods[@]}"; do jobs+=("$d $m"); done
done
run_one() {
  set -- $1
  "$bin" --dataset "$1" --method "$2" --time-budget "$budget" --steps 1000000 --eval-every 250 \
    --threads 1 --out "$out/runs/$2" >"$out/runs/$1-$2.log" 2>&1 || echo "FAILED: $1 $2 (see $out/runs/$1-$2.log)"
}
export -f run_one
export bin out budget
printf '%s\n' "${jobs[@]}" | xargs -P 2 -I{} bash -c 'run_one "{}"'

num() { grep -o "\"$2\": [-0-9.e+]*" "$1" | head -1 | awk '{print $2}'; }
{
  echo "| dataset | method | steps | train s | test NLL | data NLL | gap | MMD² | status |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
} >"$out/table.md"
echo "dataset,method,steps,train_seconds,test_nll,data_nll,gap,mmd2,status" >"$out/table.csv"
for d in "${datasets[@]}"; do
  for m in "${methods[@]}"; do
    dir=$out/runs/$m/toy2d/$d-seed0
    mj=$dir/metrics.json
    status=$(grep -o '"status": "[a-z]*"' "$mj" 2>/dev/null | sed 's/.*: "//; s/"//') || status=missing
    steps=$(num "$mj" steps); nll=$(num "$mj" test_nll_model); dn=$(num "$mj" test_nll_data)
    gap=$(num "$mj" nll_gap); mmd=$(num "$mj" mmd2_samples_vs_test)
    secs=$(tail -1 "$dir/eval_time.csv" 2>/dev/null | cut -d, -f2)
    printf '| %s | %s | %s | %.0f | %.4f | %.4f | %.4f | %.4f | %s |\n' "$d" "$m" "${steps:-0}" \
      "${secs:-0}" "${nll:-nan}" "${dn:-nan}" "${gap:-nan}" "${mmd:-nan}" "${status:-missing}" >>"$out/table.md"
    echo "$d,$m,${steps:-},${secs:-},${nll:-},${dn:-},${gap:-},${mmd:-},${status:-missing}" >>"$out/table.csv"
  done
done

# test NLL against training seconds, one panel per dataset, one line per method
n=${#datasets[@]}
cols=$(( n < 3 ? n : 3 )); rows=$(( (n + cols - 1) / cols ))
{
  echo "set terminal pngcairo size $((420 * cols)),$((330 * rows)) font ',9'"
  echo "set output 'nll_vs_time.png.tmp'"
  echo "set datafile separator ','"
  echo "set multiplot layout $rows,$cols"
  echo "set xlabel 'training seconds'"
  echo "set ylabel 'test NLL (exact)'"
  echo "set key top right"
  for d in "${datasets[@]}"; do
    dn=$(num "$out/runs/cd/toy2d/$d-seed0/metrics.json" test_nll_data || true)
    echo "set title '$d'"
    line="plot "
    for m in "${methods[@]}"; do
      line+="'runs/$m/toy2d/$d-seed0/eval_time.csv' using 2:3 skip 1 with lines lw 1.5 title '$m', "
    done
    if [ -n "$dn" ]; then line+="$dn with lines dt 2 lc rgb '#808080' title 'data'"; else line=${line%, }; fi
    echo "$line"
  done
  echo "unset multiplot"
} >"$out/nll_vs_time.gp"
(cd "$out" && gnuplot nll_vs_time.gp && mv nll_vs_time.png.tmp nll_vs_time.png)
cat "$out/table.md"
