#!/usr/bin/env bash
# A study of units (experiments/common/units.hpp: latent, ising) run --smoke, stopped after
# <first> units, resumed and stopped after <second> more, then resumed to the end, gives the
# metrics of one straight run, every number equal but the timings (seconds, µs per sweep:
# measured anew by each unit run); a second straight run gives them too (same flags and seed: the
# same numbers). A corrupt checkpoint and a resume under each of the other flags given are refused
# with one clear line naming the flag, and no run folder.
# Usage: check_units_resume.sh <binary> <scratch-dir> <first> <second> "<flag value>"...
set -uo pipefail
bin=$1 scratch=$2 first=$3 second=$4
shift 4
name=$(basename "$bin")
rm -rf "$scratch" && mkdir -p "$scratch"
fail() { echo "FAIL: $*"; exit 1; }
"$bin" --smoke --out "$scratch/a" >/dev/null 2>&1 || fail "straight run"
"$bin" --smoke --out "$scratch/a2" >/dev/null 2>&1 || fail "second straight run"
"$bin" --smoke --stop-after-units "$first" --out "$scratch/b" >/dev/null 2>&1 || fail "first part"
r=$scratch/b/$name
[ ! -e "$r/seed0/metrics.json" ] || fail "a stopped run wrote metrics.json"
"$bin" --smoke --stop-after-units "$second" --resume "$r/seed0/checkpoint.bin" --out "$scratch/b" \
  >/dev/null 2>&1 || fail "second part"
"$bin" --smoke --resume "$r/seed0-2/checkpoint.bin" --out "$scratch/b" >/dev/null 2>&1 ||
  fail "last part"
untimed() {
  python3 -c 'import json, sys
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if "seconds" not in k and "us_per" not in k}
    return x
print(json.dumps(strip(json.load(open(sys.argv[1]))), sort_keys=True))' "$1"
}
want=$(untimed "$scratch/a/$name/seed0/metrics.json")
[ "$want" = "$(untimed "$scratch/a2/$name/seed0/metrics.json")" ] || fail "two straight runs differ"
[ "$want" = "$(untimed "$r/seed0-3/metrics.json")" ] || fail "the resumed run's metrics differ"

ck=$r/seed0/checkpoint.bin
cp "$ck" "$scratch/corrupt.bin"
printf 'ABCD' | dd of="$scratch/corrupt.bin" bs=1 seek=$(($(stat -c %s "$ck") / 2)) conv=notrunc \
  status=none
"$bin" --smoke --resume "$scratch/corrupt.bin" --out "$scratch/c" >/dev/null 2>"$scratch/err"
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$scratch/err")" -eq 1 ] && grep -q "corrupt.bin is corrupt" "$scratch/err" &&
  [ ! -e "$scratch/c" ] || fail "corrupt checkpoint: exit $rc: $(cat "$scratch/err")"
for change in "$@"; do
  # shellcheck disable=SC2086
  "$bin" --smoke $change --resume "$ck" --out "$scratch/d" >/dev/null 2>"$scratch/err"
  rc=$?
  [ $rc -eq 2 ] && [ "$(wc -l <"$scratch/err")" -eq 1 ] && grep -q -- "${change%% *} " "$scratch/err" ||
    fail "$change: exit $rc: $(cat "$scratch/err")"
done
[ ! -e "$scratch/d" ] || fail "a refused resume made a run folder"
echo "$name resume checks passed"
