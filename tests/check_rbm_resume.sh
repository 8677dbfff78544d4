#!/usr/bin/env bash
# rbm --smoke stopped after 1 epoch, resumed and stopped after 2 more (across a method boundary),
# then resumed to the end, writes the same outputs byte for byte as one straight run; a corrupt
# checkpoint and a resume under another --hidden or --methods are refused with one clear line.
# Usage: check_rbm_resume.sh <rbm binary> <scratch-dir>
set -uo pipefail
bin=$1 scratch=$2
rm -rf "$scratch" && mkdir -p "$scratch"
fail() { echo "FAIL: $*"; exit 1; }
"$bin" --smoke --out "$scratch/a" >/dev/null 2>&1 || fail "straight run"
"$bin" --smoke --stop-after-epochs 1 --out "$scratch/b" >/dev/null 2>&1 || fail "first part"
r=$scratch/b/rbm
"$bin" --smoke --stop-after-epochs 2 --resume "$r/digits-seed0/checkpoint.bin" --out "$scratch/b" \
  >/dev/null 2>&1 || fail "second part"
"$bin" --smoke --resume "$r/digits-seed0-2/checkpoint.bin" --out "$scratch/b" >/dev/null 2>&1 ||
  fail "last part"
for f in metrics.json curves.csv results.md filters_cd1.csv filters_pcd.csv samples_cd1.csv \
         samples_pcd.csv; do
  cmp "$scratch/a/rbm/digits-seed0/$f" "$r/digits-seed0-3/$f" || fail "$f differs after resuming"
done

ck=$r/digits-seed0/checkpoint.bin
cp "$ck" "$scratch/corrupt.bin"
printf 'ABCD' | dd of="$scratch/corrupt.bin" bs=1 seek=$(($(stat -c %s "$ck") / 2)) conv=notrunc \
  status=none
"$bin" --smoke --resume "$scratch/corrupt.bin" --out "$scratch/c" >/dev/null 2>"$scratch/err"
rc=$?
[ $rc -eq 1 ] && grep -q "corrupt.bin is corrupt" "$scratch/err" && [ ! -e "$scratch/c" ] ||
  fail "corrupt checkpoint: exit $rc: $(cat "$scratch/err")"
for change in "--hidden 8" "--methods cd1,pcd" "--lr 0.1" "--seed 3"; do
  # shellcheck disable=SC2086
  "$bin" --smoke $change --resume "$ck" --out "$scratch/d" >/dev/null 2>"$scratch/err"
  rc=$?
  [ $rc -eq 2 ] && [ "$(wc -l <"$scratch/err")" -eq 1 ] && grep -q -- "${change%% *} " "$scratch/err" ||
    fail "$change: exit $rc: $(cat "$scratch/err")"
done
[ ! -e "$scratch/d" ] || fail "a refused resume made a run folder"
echo "rbm resume checks passed"
