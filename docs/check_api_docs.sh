#!/usr/bin/env bash
# Builds the API reference and fails on any Doxygen warning: an undocumented public name (every
# class, function, member and typedef of the headers outside the *detail namespaces needs a ///
# comment), or a malformed comment.
# Usage: check_api_docs.sh <doxygen> <doxyfile> <output dir>
set -euo pipefail
doxygen=$1 doxyfile=$2 out=$3
mkdir -p "$out"
rm -f "$out/warnings.txt"
"$doxygen" "$doxyfile" >"$out/doxygen.log" 2>&1 || { cat "$out/doxygen.log"; exit 1; }
if [ -s "$out/warnings.txt" ]; then
  echo "docs: Doxygen warnings (document these names):"
  sort -u "$out/warnings.txt"
  exit 1
fi
echo "docs: API reference in $out/html/index.html, no warnings"
