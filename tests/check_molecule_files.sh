#!/usr/bin/env bash
# The molecule metrics a `graphs` run reports, recomputed from the SMILES files it wrote: for each
# molecules_<model>.csv (index, valid_without_correction, smiles_as_generated, smiles_corrected),
# validity = valid rows / rows and uniqueness = distinct corrected SMILES / non-empty corrected
# ones must equal the run's results.csv rows, printed the same way (%.9g).
#   check_molecule_files.sh <graphs binary> <scratch folder>
set -euo pipefail
bin=$1 out=$2
rm -rf "$out"
"$bin" --smoke --parts molecules --out "$out" >/dev/null 2>&1
d="$out/graphs/seed0"
n=0
for f in "$d"/molecules_*.csv; do
  model=$(basename "$f" .csv)
  model=${model#molecules_}
  awk -F, -v m="$model" 'NR > 1 {
      rows++; valid += $2
      if ($4 != "") { corrected++; if (!($4 in seen)) { seen[$4] = 1; distinct++ } } }
    END {
      printf "molecules,%s,validity,%.9g\n", m, valid / rows
      if (corrected > 0) printf "molecules,%s,uniqueness,%.9g\n", m, distinct / corrected }' "$f" \
    >"$out/$model.expected"
  if ! grep -Fxf "$out/$model.expected" "$d/results.csv" | cmp -s - "$out/$model.expected"; then
    echo "$model: recomputed from $f:"; cat "$out/$model.expected"
    echo "reported:"; grep "^molecules,$model,\(validity\|uniqueness\)," "$d/results.csv"
    exit 1
  fi
  n=$((n + 1))
done
test "$n" -ge 7 || { echo "only $n SMILES files"; exit 1; }
echo "validity and uniqueness of $n models recomputed from their SMILES files"
