#!/usr/bin/env bash
# toy2d refuses bad state on --resume:
#  1. a checkpoint with four bytes overwritten in the middle is refused as corrupt (exit 1, the file
#     named, no run folder made), never reported as a divergence;
#  2. a resume that changes any flag defining the model, the data or the training (the method
#     and its settings included) is refused (exit
#     2, one line naming the flag). The flags are read from the run's config.json, so a flag added
#     later without a changed value below fails this test until it gets one;
#  3. a resume that changes only --steps (and evaluation flags) is accepted;
#  4. --resume-from-weights starts a new run under other flags, and its config.json says where
#     its weights came from.
# Usage: check_toy2d_resume.sh <toy2d binary> <scratch-dir>
set -uo pipefail
bin=$1 scratch=$2
rm -rf "$scratch" && mkdir -p "$scratch"
fail() { echo "FAIL: $*"; exit 1; }
# a small, quick run; with_flag replaces one of these (or adds a flag) for a variant
declare -A small=([steps]=20 [eval-every]=10 [hidden]=16 [grid]=40 [train-size]=500
                  [test-size]=200 [eval-samples]=100 [sample-steps]=20 [buffer]=300 [batch]=64)
with_flag() {  # with_flag <flag name without dashes> <value>: prints the arguments, one a line
  local k
  for k in "${!small[@]}"; do [ "$k" = "$1" ] || printf -- '--%s\n%s\n' "$k" "${small[$k]}"; done
  [ -z "$1" ] || printf -- '--%s\n%s\n' "$1" "$2"
}
mapfile -t base < <(with_flag "" "")
"$bin" "${base[@]}" --out "$scratch/a" >/dev/null 2>&1 || fail "the first run failed"
run=$scratch/a/toy2d/8gaussians-seed0
ck=$run/checkpoint.bin
[ -s "$ck" ] || fail "no checkpoint"
runs_made() { ls "$1/toy2d" 2>/dev/null | wc -l; }

# 1. corruption
cp "$ck" "$scratch/corrupt.bin"
size=$(stat -c %s "$ck")
printf 'ABCD' | dd of="$scratch/corrupt.bin" bs=1 seek=$((size / 2)) conv=notrunc status=none
"$bin" "${base[@]}" --resume "$scratch/corrupt.bin" --out "$scratch/c" >/dev/null 2>"$scratch/err"
rc=$?
[ $rc -eq 1 ] || fail "corrupt checkpoint: exit $rc, expected 1: $(cat "$scratch/err")"
grep -q "corrupt.bin is corrupt" "$scratch/err" || fail "corrupt checkpoint: $(cat "$scratch/err")"
grep -q diverged "$scratch/err" && fail "corruption reported as divergence"
[ "$(runs_made "$scratch/c")" -eq 0 ] || fail "a run folder was made for a corrupt checkpoint"

# 2. every model/data/training flag changed, one at a time
declare -A changed=(
  [activation]=relu [alpha]=0.2 [batch]=32 [buffer]=200 [dataset]=rings [grad_clip]=1
  [hidden]=8 [init]=noise [langevin_steps]=5 [layers]=1 [lr]=0.01 [lr_final]=0.00001
  [noise_box]=3 [restart]=0.1 [seed]=1 [step_size]=0.01 [temperature]=0.5 [test_size]=100
  [threads]=1 [train_size]=400 [sampler]=mala [pt_levels]=3 [pt_max_temperature]=5
  [method]=sm [dsm_sigma]=0.2 [ssm_projections]=2 [ed_t]=0.5 [ed_m]=2 [ed_w]=0 [kl_weight]=0.5 [nce_ratio]=2
)
may_differ=" steps eval_every eval_samples sample_steps grid box out resume resume_from_weights smoke time_budget "
checked=0
for key in $(sed -nE 's/^  "([a-z_]+)": .*/\1/p' "$run/config.json"); do
  [[ "$may_differ" == *" $key "* ]] && continue
  [ -n "${changed[$key]:-}" ] || fail "config key '$key' has no changed value in $0: add one"
  flag="--${key//_/-}"
  mapfile -t args < <(with_flag "${key//_/-}" "${changed[$key]}")
  "$bin" "${args[@]}" --resume "$ck" --out "$scratch/d" >/dev/null 2>"$scratch/err"
  rc=$?
  [ $rc -eq 2 ] || fail "$flag ${changed[$key]}: exit $rc, expected 2: $(cat "$scratch/err")"
  [ "$(wc -l <"$scratch/err")" -eq 1 ] || fail "$flag: more than one line: $(cat "$scratch/err")"
  grep -q -- "$flag " "$scratch/err" || fail "$flag not named: $(cat "$scratch/err")"
  checked=$((checked + 1))
done
[ "$(runs_made "$scratch/d")" -eq 0 ] || fail "a refused resume made a run folder"
[ $checked -ge 20 ] || fail "only $checked flags checked"

# 3. extending the run is allowed
mapfile -t args < <(with_flag steps 30)
"$bin" "${args[@]}" --resume "$ck" --out "$scratch/e" >/dev/null 2>"$scratch/err" ||
  fail "resume with --steps 30 refused: $(cat "$scratch/err")"
grep -q '"steps": 30' "$scratch/e/toy2d/8gaussians-seed0/metrics.json" || fail "did not reach 30"

# 4. a new run from the weights only, under other flags
"$bin" "${base[@]}" --lr 0.01 --dataset rings --resume-from-weights "$ck" --out "$scratch/f" \
  >/dev/null 2>"$scratch/err" || fail "--resume-from-weights refused: $(cat "$scratch/err")"
grep -q "\"resume_from_weights\": \"$ck\"" "$scratch/f/toy2d/rings-seed0/config.json" ||
  fail "config.json does not say where the weights came from"
grep -q '"steps": 20' "$scratch/f/toy2d/rings-seed0/metrics.json" ||
  fail "a run from weights should start at step 0 and run its 20 steps"
echo "toy2d resume checks passed ($checked flags refused when changed)"
