#!/usr/bin/env bash
# The library's folders depend one way. Each folder may include project headers only from the
# folders listed for it; anything else is reported (file, line, include) and fails the test.
#   autodiff  <- io, samplers, metrics
#   io        <- datasets, ebm          (files, errors, checkpoints: no model, no data set)
#   samplers  <- ebm                    (model-free: an energy and its gradient)
#   distributed <- ebm                  (the trainers' Comm: no MPI, no model)
#   molecules <- experiments, tests     (RDKit inside: graphs and data sets, no model)
#   datasets and metrics never reach ebm/; ebm/ never reaches datasets/ or metrics/:
#   experiments/, tests/ and bench/ are where data, models and metrics meet.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
declare -A allowed=(
  [autodiff]="autodiff"
  [io]="autodiff io"
  [metrics]="autodiff metrics"
  [datasets]="autodiff io datasets"
  [samplers]="autodiff samplers"
  [distributed]="autodiff io distributed"
  [ebm]="autodiff io samplers distributed ebm"
  [molecules]="autodiff io datasets molecules"
)
bad=0
for dir in "${!allowed[@]}"; do
  for f in "$dir"/*.hpp "$dir"/*.cpp; do
    [ -e "$f" ] || continue
    while IFS=: read -r line inc; do
      top=${inc%%/*}
      if [[ " ${allowed[$dir]} " != *" $top "* ]]; then
        echo "$f:$line: includes \"$inc\" ($dir/ may include only: ${allowed[$dir]})"
        bad=1
      fi
    done < <(grep -n '^#include "' "$f" | sed -E 's/^([0-9]+):#include "([^"]+)".*/\1:\2/')
  done
done
exit $bad
