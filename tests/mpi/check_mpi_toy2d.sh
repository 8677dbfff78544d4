#!/usr/bin/env bash
# toy2d under mpirun:
#  1. -np 1 under mpirun is the serial run: metrics.json byte-identical to a run without mpirun;
#  2. two ranks stopped at step 20 and resumed to 40 = one straight 40-step run on two ranks, byte
#     for byte (metrics.json; constant learning rate, so --steps does not move the schedule);
#  3. a 2-rank checkpoint is refused by 4 ranks: non-zero exit, one line naming both numbers;
#  4. a divergence on 2 ranks: exit 3 (from every rank), metrics.json says so, the checkpoint kept;
#  5. a rank killed mid-run (SIGKILL): mpirun ends every rank with a non-zero exit and a message,
#     within 60 s (no hang), and the checkpoint left behind is whole: a resume from it runs.
# Usage: check_mpi_toy2d.sh <mpirun> <toy2d binary> <scratch-dir>
set -uo pipefail
# mpirun binds a rank to one core, where OpenBLAS starts one thread, and with some CPUs' kernels
# (OpenBLAS's Haswell/Zen dgemm) a product's last bits depend on OpenBLAS's thread count: every run
# here, serial or not, uses one OpenBLAS thread, so the comparisons are of this library's code.
export OPENBLAS_NUM_THREADS=1
mpirun=$1 bin=$2 scratch=$3
rm -rf "$scratch" && mkdir -p "$scratch"
fail() { echo "FAIL: $*"; exit 1; }
small=(--eval-every 20 --hidden 16 --grid 40 --train-size 600 --test-size 200 --eval-samples 100
       --sample-steps 20 --buffer 300 --batch 64 --lr 1e-3 --lr-final 1e-3 --threads 1)
metrics() { echo "$1/toy2d/8gaussians-seed0/metrics.json"; }

# 1. one rank under mpirun = no mpirun
"$bin" "${small[@]}" --steps 40 --out "$scratch/serial" >/dev/null 2>&1 || fail "serial run"
"$mpirun" -np 1 "$bin" "${small[@]}" --steps 40 --out "$scratch/np1" >/dev/null 2>&1 || fail "np 1 run"
cmp "$(metrics "$scratch/serial")" "$(metrics "$scratch/np1")" || fail "mpirun -np 1 differs from the serial run"

# 2. two ranks: straight, and stopped + resumed
"$mpirun" -np 2 "$bin" "${small[@]}" --steps 40 --out "$scratch/straight" >/dev/null 2>&1 || fail "2-rank run"
grep -q '"ranks": 2' "$(metrics "$scratch/straight")" || fail "metrics.json does not say 2 ranks"
cmp -s "$(metrics "$scratch/serial")" "$(metrics "$scratch/straight")" && fail "2 ranks gave the serial run's numbers (the ranks' streams should differ)"
"$mpirun" -np 2 "$bin" "${small[@]}" --steps 20 --out "$scratch/half" >/dev/null 2>&1 || fail "2-rank half run"
ck=$scratch/half/toy2d/8gaussians-seed0/checkpoint.bin
"$mpirun" -np 2 "$bin" "${small[@]}" --steps 40 --resume "$ck" --out "$scratch/resumed" >/dev/null 2>&1 || fail "2-rank resume"
cmp "$(metrics "$scratch/straight")" "$(metrics "$scratch/resumed")" || fail "stopped and resumed on 2 ranks differs from the straight run"

# 3. another number of ranks (4: --batch 64 is a multiple; on 3 it is refused before the resume)
grep -q "must be a multiple of the 3 ranks" <("$mpirun" -np 3 --oversubscribe "$bin" "${small[@]}" \
  --steps 40 --resume "$ck" --out "$scratch/three" 2>&1) || fail "--batch 64 on 3 ranks not refused"
"$mpirun" -np 4 --oversubscribe "$bin" "${small[@]}" --steps 40 --resume "$ck" --out "$scratch/four" \
  >"$scratch/four.out" 2>"$scratch/four.err" && fail "4 ranks resumed a 2-rank checkpoint"
grep -q "written by 2 rank(s) and this run has 4" "$scratch/four.err" || fail "4 ranks: $(cat "$scratch/four.err")"
[ "$(grep -c "cannot resume" "$scratch/four.err")" -eq 1 ] || fail "4 ranks: not one line: $(cat "$scratch/four.err")"
[ -e "$scratch/four" ] && fail "a run folder was made for a refused resume"

# 4. divergence: every rank stops at the same step, rank 0 reports it once
"$mpirun" -np 2 "$bin" "${small[@]}" --steps 40 --step-size 1e30 --out "$scratch/diverge" \
  >/dev/null 2>"$scratch/diverge.err"
rc=$?
d=$scratch/diverge/toy2d/8gaussians-seed0
[ $rc -eq 3 ] || fail "divergence on 2 ranks: exit $rc, expected 3: $(cat "$scratch/diverge.err")"
grep -q '"status": "diverged"' "$d/metrics.json" || fail "divergence not in metrics.json"
[ "$(grep -c "training diverged at step" "$scratch/diverge.err")" -eq 1 ] || fail "divergence reported $(grep -c "training diverged" "$scratch/diverge.err") times"
[ -s "$d/checkpoint.bin" ] || fail "no checkpoint kept after the divergence"

# 5. a rank killed
long=("${small[@]}" --steps 100000000 --out "$scratch/kill")
"$mpirun" -np 2 "$bin" "${long[@]}" >"$scratch/kill.out" 2>&1 &
launcher=$!
for _ in $(seq 600); do
  [ -s "$scratch/kill/toy2d/8gaussians-seed0/eval.csv" ] && break
  sleep 0.1
done
[ -s "$scratch/kill/toy2d/8gaussians-seed0/eval.csv" ] || { kill $launcher; fail "the long run made no evaluation"; }
victim=$(pgrep -f "^$bin .*$scratch/kill" | tail -1)
[ -n "$victim" ] || { kill $launcher; fail "no rank process found"; }
kill -9 "$victim"
for _ in $(seq 600); do kill -0 $launcher 2>/dev/null || break; sleep 0.1; done
if kill -0 $launcher 2>/dev/null; then kill -9 $launcher; fail "mpirun still running 60 s after a rank died (a hang)"; fi
wait $launcher && fail "mpirun exited 0 after a rank was killed"
grep -qi "signal 9\|killed" "$scratch/kill.out" || fail "no message about the dead rank: $(tail -5 "$scratch/kill.out")"
pgrep -f "^$bin .*$scratch/kill" >/dev/null && fail "a rank outlived the run"
"$mpirun" -np 2 "$bin" "${small[@]}" --steps 1 --resume "$scratch/kill/toy2d/8gaussians-seed0/checkpoint.bin" \
  --out "$scratch/after-kill" >"$scratch/after-kill.out" 2>&1 || fail "resume after the kill: $(tail -3 "$scratch/after-kill.out")"
grep -q "resumed from" "$scratch/after-kill.out" || fail "resume after the kill did not resume"
echo "ok"
