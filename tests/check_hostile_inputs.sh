#!/usr/bin/env bash
# Hostile inputs to the experiment binaries, beyond their flags (check_hostile_flags.sh): data
# files with NaN, an embedded NUL or hex numbers; data directories that are missing, or hold a
# folder or a FIFO under the file's name; CRC-valid checkpoints whose contents no trainer writes
# (an all-zero generator, a data order that is not a permutation, an impossible epoch, a missing
# entry); a resume folder with no checkpoint of the run; a checkpoint of the wrong binary; sizes
# beyond memory; a diverging sampler; QM9 files no molecule of which encodes. Each must end with
# the right status and one line saying what is wrong, and leave no run folder behind.
# Usage: check_hostile_inputs.sh <build-dir> <scratch-dir>
set -uo pipefail
build=$1 scratch=$2
x=$build/experiments craft=$build/tests/craft_checkpoint
rm -rf "$scratch" && mkdir -p "$scratch" && cd "$scratch" || exit 1
bad=0 checked=0
# expect <status> <pattern> <command...>: the status, the last line of stderr matching the
# pattern, at most one line on stderr that is not a progress line, and no run folder
expect() {
  local want=$1 pattern=$2
  shift 2
  checked=$((checked + 1))
  rm -rf runs
  timeout 120 "$@" --out runs >/dev/null 2>err
  local rc=$? lines
  lines=$(grep -cvE '\[[#.]+\] +[0-9]+%' err)
  if [ $rc -ne "$want" ] || [ "$lines" -ne 1 ] || ! tail -1 err | grep -qE -- "$pattern" ||
     [ -e runs ]; then
    echo "FAIL: $*: exit $rc (expected $want), $lines lines: $(head -c 400 err)"
    [ -e runs ] && echo "      and it left a run folder"
    bad=1
  fi
}
digits=$build/../datasets/data/digits.csv.gz
[ -f "$digits" ] || digits=$(dirname "$0")/../datasets/data/digits.csv.gz
row() { gzip -dc "$digits" | head -1 | tr -d '\r'; }
mkdata() {  # mkdata <dir> <content of the first line>: the digits with a bad first line
  mkdir -p "$1"
  { printf '%s\n' "$2"; gzip -dc "$digits" | tail -n +2; } | gzip >"$1/digits.csv.gz"
}
r=$(row)
mkdata nan "nan,${r#*,}"
mkdata nul "$(printf '%s' "${r%,*}"),5"; printf '%s,5\0garbage\n' "${r%,*}" | gzip >nul/digits.csv.gz
mkdata hex "0x1f,${r#*,}"
mkdir -p missing notgzip isdir/digits.csv.gz fifo && mkfifo fifo/digits.csv.gz
printf 'plain text' >notgzip/digits.csv.gz
expect 1 "nan.*not a number" "$x/rbm" --smoke --data-dir nan
expect 1 "not a number" "$x/rbm" --smoke --data-dir nul
expect 1 "0x1f.*not a number" "$x/rbm" --smoke --data-dir hex
expect 1 "gzip|corrupt|not a number" "$x/rbm" --smoke --data-dir notgzip
expect 1 "not found in the data directory" "$x/rbm" --smoke --data-dir missing
expect 1 "not a regular file" "$x/rbm" --smoke --data-dir isdir
expect 1 "not a regular file" "$x/rbm" --smoke --data-dir fifo
expect 1 "not found in \\\$EBL_DATA_DIR" env EBL_DATA_DIR="$PWD/missing" "$x/rbm" --smoke
expect 1 "not found in the data directory" "$x/losses" --smoke --data-dir missing
expect 1 "not found in the data directory" "$x/compose" --smoke --study plane,digits --data-dir missing
expect 1 "not found in the data directory" "$x/jem" --smoke --data-dir missing
expect 2 "does not exist" "$x/jem" --smoke --data-dir no-such-folder

# checkpoints: a real one stopped after an epoch, then one entry changed with a valid CRC
"$x/rbm" --smoke --stop-after-epochs 1 --out ck >/dev/null 2>&1 || { echo "FAIL: rbm run"; bad=1; }
ck=ck/rbm/digits-seed0/checkpoint.bin
"$craft" "$ck" nocurves.bin drop curves
"$craft" "$ck" perm1e9.bin set-entry current/perm 3 1e9
"$craft" "$ck" permnan.bin set-entry current/perm 3 nan
"$craft" "$ck" epoch.bin set-int epoch 1099511627776
"$craft" "$ck" weights.bin set-entry current/param/W 0 nan
cp "$ck" rng0.bin
for k in 0 1 2 3; do "$craft" rng0.bin rng0.bin set-int current/rng/s$k 0; done
expect 1 "no string 'curves'" "$x/rbm" --smoke --resume nocurves.bin
expect 1 "not a permutation" "$x/rbm" --smoke --resume perm1e9.bin
expect 1 "not a permutation" "$x/rbm" --smoke --resume permnan.bin
expect 1 "integer 'epoch' is 1099511627776" "$x/rbm" --smoke --resume epoch.bin
expect 1 "current/param/W' holds nan" "$x/rbm" --smoke --resume weights.bin
expect 1 "all zero" "$x/rbm" --smoke --resume rng0.bin
expect 2 "not a toy2d checkpoint" "$x/mixing" --smoke --learned "$ck"

mkdir -p empty
expect 2 "no checkpoint of this run" "$x/jem" --smoke --resume empty
"$x/jem" --smoke --stop-after-epochs 1 --out jck >/dev/null 2>&1 || { echo "FAIL: jem run"; bad=1; }
j=jck/jem/seed0
expect 2 "no checkpoint of this run" "$x/jem" --smoke --seed 5 --resume "$j"
mkdir -p jperm jrng
"$craft" "$j/ckpt_digits_baseline_seed0.bin" jperm/ckpt_digits_baseline_seed0.bin set-entry perm 0 1e9
cp "$j/ckpt_digits_baseline_seed0.bin" jrng/
for k in 0 1 2 3; do
  "$craft" jrng/ckpt_digits_baseline_seed0.bin jrng/ckpt_digits_baseline_seed0.bin set-int rng/s$k 0
done
expect 1 "not a permutation" "$x/jem" --smoke --resume jperm
expect 1 "all zero" "$x/jem" --smoke --resume jrng

"$x/toy2d" --smoke --out tck >/dev/null 2>&1 || { echo "FAIL: toy2d run"; bad=1; }
t=tck/toy2d/8gaussians-seed0/checkpoint.bin
mapfile -t rngkeys < <("$craft" "$t" - list | sed -nE 's/^integer ([^ ]*rng[^ ]*\/s[0-3]) .*/\1/p')
cp "$t" trng0.bin
for k in "${rngkeys[@]}"; do "$craft" trng0.bin trng0.bin set-int "$k" 0; done
[ "${#rngkeys[@]}" -ge 4 ] || { echo "FAIL: no generator state in toy2d's checkpoint"; bad=1; }
expect 1 "all zero" "$x/toy2d" --smoke --resume trng0.bin

# sizes beyond memory are refused before anything is allocated
expect 2 "more than this machine" "$x/toy2d" --smoke --grid 4000 --hidden 65536
expect 2 "more than this machine" "$x/mixing" --smoke --chains 100000 --draws 10000000
expect 2 "more than this machine" "$x/jem" --smoke --buffer 16777216 --datasets fashion

# a diverging sampler: status 3, named on stderr and in the results
rm -rf runs
"$x/mixing" --smoke --step-size 0.2 --targets banana --samplers ula --out runs >/dev/null 2>err
rc=$?
checked=$((checked + 1))
if [ $rc -ne 3 ] || ! grep -q "ula on banana diverged" err ||
   ! grep -q '"status": "diverged"' runs/mixing/seed0/results.json; then
  echo "FAIL: a diverging sampler: exit $rc: $(cat err)"
  bad=1
fi

# fewer test images than the inpainting picture's 8 columns (an out-of-bounds read before)
rm -rf runs
checked=$((checked + 1))
"$x/rbm" --smoke --test-size 3 --methods cd1 --out runs >/dev/null 2>err ||
  { echo "FAIL: rbm --test-size 3: $(cat err)"; bad=1; }
# a flag typed with --smoke wins over --smoke's size
rm -rf runs
checked=$((checked + 1))
"$x/toy2d" --smoke --steps 4 --eval-every 2 --out runs >/dev/null 2>&1 &&
  grep -q '"steps": 4' runs/toy2d/8gaussians-seed0/metrics.json ||
  { echo "FAIL: --smoke --steps 4 did not run 4 steps"; bad=1; }

# QM9 files (graphs is built with RDKit only)
if [ -x "$x/graphs" ]; then
  mkdir -p q1 q2 q3
  printf 'smiles\n[NH4+]\n' | gzip >q1/qm9.csv.gz
  { echo smiles; head -c 8000 /dev/zero | tr '\0' C; echo; echo '[NH4+]'; } | gzip >q2/qm9.csv.gz
  printf 'smiles\nCC\rO\n' | gzip >q3/qm9.csv.gz
  expect 1 "0 of the 1 SMILES" "$x/graphs" --smoke --parts molecules --data-dir q1
  expect 1 "0 of the 2 SMILES" "$x/graphs" --smoke --parts molecules --data-dir q2
  expect 1 "byte 0x0d" "$x/graphs" --smoke --parts molecules --data-dir q3
else
  echo "graphs not built (no RDKit): its QM9 cases did not run"
fi
echo "$checked hostile inputs checked"
exit $bad
