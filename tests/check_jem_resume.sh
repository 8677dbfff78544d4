#!/usr/bin/env bash
# jem resumes: a small run stopped after 3 epochs (the baseline finished, JEM half way) and resumed gives the same results.md as the
# same run straight through (every model's trainer, buffer, data order and generator come back);
# a resume under other flags is refused by name.
# Usage: check_jem_resume.sh <jem binary> <scratch-dir>
set -uo pipefail
bin=$1 scratch=$2
rm -rf "$scratch" && mkdir -p "$scratch"
fail() { echo "FAIL: $*"; exit 1; }
small=(--datasets digits --seeds 1 --digits-epochs 2 --hidden 16 --buffer 200 --eval-size 50
       --sgld-steps 2 --sample-steps 2 --pgd-steps 2)
"$bin" "${small[@]}" --out "$scratch/a" >/dev/null 2>&1 || fail "the straight run failed"
"$bin" "${small[@]}" --out "$scratch/b" --stop-after-epochs 3 >/dev/null 2>&1 || fail "the stopped run failed"
b=$scratch/b/jem/seed0
[ -s "$b/ckpt_digits_jem_seed0.bin" ] || fail "no checkpoint of the unfinished model"
[ -e "$b/results.md" ] && fail "the stopped run wrote results"
"$bin" "${small[@]}" --out "$scratch/c" --resume "$b" >/dev/null 2>&1 || fail "the resumed run failed"
cmp "$scratch/a/jem/seed0/results.md" "$scratch/c/jem/seed0/results.md" || fail "resumed results differ"
"$bin" "${small[@]}" --out "$scratch/d" --resume "$b" --lr 0.5 >/dev/null 2>"$scratch/err"
rc=$?
[ $rc -eq 2 ] || fail "a resume under another --lr: exit $rc, expected 2: $(cat "$scratch/err")"
grep -q -- "--lr" "$scratch/err" || fail "--lr not named: $(cat "$scratch/err")"
echo "ok"
