#!/usr/bin/env bash
# rbm under mpirun:
#  1. -np 1 under mpirun is the serial run (metrics.json byte-identical);
#  2. two ranks stopped after 1 epoch, resumed and stopped after 2 more (across a method boundary),
#     then resumed to the end = one straight 2-rank run, byte for byte;
#  3. a corrupt checkpoint on 2 ranks: exit 1, one line naming the file, no run folder.
# Usage: check_mpi_rbm.sh <mpirun> <rbm binary> <scratch-dir>
set -uo pipefail
# mpirun binds a rank to one core, where OpenBLAS starts one thread, and with some CPUs' kernels
# (OpenBLAS's Haswell/Zen dgemm) a product's last bits depend on OpenBLAS's thread count: every run
# here, serial or not, uses one OpenBLAS thread, so the comparisons are of this library's code.
export OPENBLAS_NUM_THREADS=1
mpirun=$1 bin=$2 scratch=$3
rm -rf "$scratch" && mkdir -p "$scratch"
fail() { echo "FAIL: $*"; exit 1; }
"$bin" --smoke --out "$scratch/serial" >/dev/null 2>&1 || fail "serial run"
"$mpirun" -np 1 "$bin" --smoke --out "$scratch/np1" >/dev/null 2>&1 || fail "np 1 run"
cmp "$scratch/serial/rbm/digits-seed0/metrics.json" "$scratch/np1/rbm/digits-seed0/metrics.json" ||
  fail "mpirun -np 1 differs from the serial run"

"$mpirun" -np 2 "$bin" --smoke --out "$scratch/a" >/dev/null 2>&1 || fail "straight 2-rank run"
grep -q '"pcd"' "$scratch/a/rbm/digits-seed0/metrics.json" || fail "no metrics from 2 ranks"
"$mpirun" -np 2 "$bin" --smoke --stop-after-epochs 1 --out "$scratch/b" >/dev/null 2>&1 || fail "first part"
r=$scratch/b/rbm
"$mpirun" -np 2 "$bin" --smoke --stop-after-epochs 2 --resume "$r/digits-seed0/checkpoint.bin" \
  --out "$scratch/b" >/dev/null 2>&1 || fail "second part"
"$mpirun" -np 2 "$bin" --smoke --resume "$r/digits-seed0-2/checkpoint.bin" --out "$scratch/b" \
  >/dev/null 2>&1 || fail "last part"
for f in metrics.json curves.csv results.md filters_cd1.csv filters_pcd.csv samples_pcd.csv; do
  cmp "$scratch/a/rbm/digits-seed0/$f" "$r/digits-seed0-3/$f" || fail "$f differs after resuming on 2 ranks"
done

ck=$r/digits-seed0/checkpoint.bin
cp "$ck" "$scratch/corrupt.bin"
printf 'ABCD' | dd of="$scratch/corrupt.bin" bs=1 seek=$(($(stat -c %s "$ck") / 2)) conv=notrunc \
  status=none
"$mpirun" -np 2 "$bin" --smoke --resume "$scratch/corrupt.bin" --out "$scratch/c" >/dev/null 2>"$scratch/err"
rc=$?
[ $rc -ne 0 ] && [ "$(grep -c "corrupt.bin is corrupt" "$scratch/err")" -eq 1 ] && [ ! -e "$scratch/c" ] ||
  fail "corrupt checkpoint on 2 ranks: exit $rc: $(cat "$scratch/err")"
echo "ok"
