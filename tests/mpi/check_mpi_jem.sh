#!/usr/bin/env bash
# jem under mpirun: -np 1 is the serial run (results.md byte-identical); two ranks stopped after 3
# epochs (the baseline finished, JEM half way) and resumed give the results.md of a straight
# 2-rank run; a resume on 3 ranks is refused in one line naming both rank counts.
# Usage: check_mpi_jem.sh <mpirun> <jem binary> <scratch-dir>
set -uo pipefail
# mpirun binds a rank to one core, where OpenBLAS starts one thread, and with some CPUs' kernels
# (OpenBLAS's Haswell/Zen dgemm) a product's last bits depend on OpenBLAS's thread count: every run
# here, serial or not, uses one OpenBLAS thread, so the comparisons are of this library's code.
export OPENBLAS_NUM_THREADS=1
mpirun=$1 bin=$2 scratch=$3
rm -rf "$scratch" && mkdir -p "$scratch"
fail() { echo "FAIL: $*"; exit 1; }
small=(--datasets digits --seeds 1 --digits-epochs 2 --hidden 16 --buffer 200 --eval-size 50
       --sgld-steps 2 --sample-steps 2 --pgd-steps 2 --batch 48)
"$bin" "${small[@]}" --out "$scratch/serial" >/dev/null 2>&1 || fail "serial run"
"$mpirun" -np 1 "$bin" "${small[@]}" --out "$scratch/np1" >/dev/null 2>&1 || fail "np 1 run"
cmp "$scratch/serial/jem/seed0/results.md" "$scratch/np1/jem/seed0/results.md" ||
  fail "mpirun -np 1 differs from the serial run"
"$mpirun" -np 2 "$bin" "${small[@]}" --out "$scratch/a" >/dev/null 2>&1 || fail "straight 2-rank run"
"$mpirun" -np 2 "$bin" "${small[@]}" --out "$scratch/b" --stop-after-epochs 3 >/dev/null 2>&1 ||
  fail "stopped 2-rank run"
b=$scratch/b/jem/seed0
[ -e "$b/results.md" ] && fail "the stopped run wrote results"
"$mpirun" -np 2 "$bin" "${small[@]}" --out "$scratch/c" --resume "$b" >/dev/null 2>&1 || fail "resumed 2-rank run"
cmp "$scratch/a/jem/seed0/results.md" "$scratch/c/jem/seed0/results.md" || fail "resumed results differ on 2 ranks"
"$mpirun" -np 3 --oversubscribe "$bin" "${small[@]}" --out "$scratch/d" --resume "$b" >/dev/null 2>"$scratch/err" &&
  fail "3 ranks resumed a 2-rank run"
[ "$(grep -c "written by 2 rank(s) and this run has 3" "$scratch/err")" -eq 1 ] ||
  fail "3 ranks: $(cat "$scratch/err")"
echo "ok"
