#!/usr/bin/env bash
# Walks every numeric flag a binary lists in its --help and gives it hostile values; each must be
# refused at parse time: exit status 2, exactly one line on stderr naming the flag, and no run
# folder made. Because the flags are read from --help, a flag added later is checked without
# touching this test.
#   FLOAT flags: nan, inf, -inf, values beyond float32's range (finite as doubles), non-numbers;
#   INT/UINT flags: values beyond 64 bits, leading zeros (octal to C), hex, fractions, '', text;
#   UINT flags also: negative numbers (which CLI11 alone wraps to 2^64 - 1).
# List flags named after the binary (comma-separated lists) get '', ',' and 'x,,y'.
# Usage: check_hostile_flags.sh <binary> <scratch-dir> <minimum number of numeric flags> [list flags]
set -uo pipefail
bin=$1 scratch=$2 min=$3
shift 3
lists=("$@")
rm -rf "$scratch" && mkdir -p "$scratch"
mapfile -t floats < <("$bin" --help | sed -nE 's/^ +(--[a-z0-9-]+) FLOAT.*/\1/p')
mapfile -t ints < <("$bin" --help | sed -nE 's/^ +(--[a-z0-9-]+) INT.*/\1/p')
mapfile -t uints < <("$bin" --help | sed -nE 's/^ +(--[a-z0-9-]+) UINT.*/\1/p')
total=$((${#floats[@]} + ${#ints[@]} + ${#uints[@]}))
if [ "$total" -lt "$min" ]; then
  echo "found $total numeric flags in $bin --help, expected at least $min"
  exit 1
fi
out=()
"$bin" --help | grep -qE '^ +--out ' && out=(--out "$scratch/runs")
bad=0 tried=0
try() {  # try <flag> <value>
  tried=$((tried + 1))
  timeout 60 "$bin" "$1" "$2" "${out[@]}" >/dev/null 2>"$scratch/err"
  local rc=$? lines
  lines=$(wc -l <"$scratch/err")
  if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q -- "$1" "$scratch/err" ||
     [ -e "$scratch/runs" ]; then
    echo "$1 '$2': exit $rc, $lines lines on stderr: $(head -c 300 "$scratch/err")"
    bad=1
    rm -rf "$scratch/runs"
  fi
}
int_values=(99999999999999999999 18446744073709551616 -99999999999999999999 010 0x10 1.5 '' abc 1e3)
for flag in "${floats[@]}"; do
  for v in nan inf -inf 1e39 -1e39 3.5e38 abc ''; do try "$flag" "$v"; done
done
for flag in "${ints[@]}"; do
  for v in "${int_values[@]}"; do try "$flag" "$v"; done
done
for flag in "${uints[@]}"; do
  for v in "${int_values[@]}" -1 -0; do try "$flag" "$v"; done
done
for flag in "${lists[@]}"; do
  for v in '' , 'x,,y' ',x'; do try "$flag" "$v"; done
done
echo "$(basename "$bin"): $tried hostile values refused over ${#floats[@]} FLOAT, ${#ints[@]} INT," \
  "${#uints[@]} UINT and ${#lists[@]} list flags"
exit $bad
