#!/usr/bin/env bash
# Walks every floating-point flag a binary lists in its --help (type FLOAT) and checks that NaN,
# inf and -inf are each refused at parse time: exit status 2, exactly one line on stderr naming
# the flag, and no run folder made. Because it reads the flags from --help, a flag added later
# is checked without touching this test.
# Usage: check_float_flags.sh <binary> <scratch-dir> <minimum number of FLOAT flags>
set -uo pipefail
bin=$1 scratch=$2 min=$3
rm -rf "$scratch" && mkdir -p "$scratch"
mapfile -t flags < <("$bin" --help | sed -nE 's/^ +(--[a-z0-9-]+) FLOAT.*/\1/p')
if [ "${#flags[@]}" -lt "$min" ]; then
  echo "found ${#flags[@]} FLOAT flags in $bin --help, expected at least $min"
  exit 1
fi
out=()
"$bin" --help | grep -qE '^ +--out ' && out=(--out "$scratch/runs")
bad=0
for flag in "${flags[@]}"; do
  for v in nan inf -inf; do
    "$bin" "$flag" "$v" "${out[@]}" >/dev/null 2>"$scratch/err"
    rc=$?
    lines=$(wc -l <"$scratch/err")
    if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q -- "$flag" "$scratch/err" ||
       [ -e "$scratch/runs" ]; then
      echo "$flag $v: exit $rc, $lines lines on stderr: $(head -c 300 "$scratch/err")"
      bad=1
    fi
  done
done
echo "checked ${#flags[@]} FLOAT flags of $(basename "$bin"): ${flags[*]}"
exit $bad
