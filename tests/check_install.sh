#!/usr/bin/env bash
# The library as a user gets it: install the build to a temporary prefix, then, using nothing of
# the source tree but the two small projects named below,
#  1. compile every installed header on its own against find_package(ebl) (tests/installed/);
#  2. build and run examples/custom_energy against the prefix (its own checks must pass, and it
#     must find the digits under <prefix>/share/ebl);
#  3. compile and run a program with the flags of the installed ebl.pc (pkg-config);
#  4. run the installed ebl-rbm binary; then spoil the installed digits file and check that the
#     binary read it from <prefix>/share/ebl (the error names that file), and that EBL_DATA_DIR
#     points it elsewhere;
#  5. when the Python module was built: import the installed package (no build folder on the path)
#     and run a small sampling and gradient check with it;
#  6. every C++ block of README.md and docs/ (tests/tools/doc_programs.py assembles them into
#     programs): compiled against the prefix alone and run, each must exit 0.
# Usage: check_install.sh <build-dir> <source-dir> <scratch-dir>
set -euo pipefail
build=$1 src=$2 scratch=$3
rm -rf "$scratch" && mkdir -p "$scratch"
prefix=$scratch/prefix
fail() { echo "FAIL: $*"; exit 1; }
jobs=$(nproc)

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/ebl/autodiff/tape.hpp include/ebl/autodiff/version.hpp lib/libebl.a \
         lib/cmake/ebl/eblConfig.cmake lib/cmake/ebl/eblConfigVersion.cmake lib/pkgconfig/ebl.pc \
         share/ebl/digits.csv.gz bin/ebl-toy2d bin/ebl-rbm; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done

# 1
cmake -S "$src/tests/installed" -B "$scratch/headers" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/headers" -j "$jobs" >/dev/null || fail "an installed header does not compile alone"

# 2
cmake -S "$src/examples/custom_energy" -B "$scratch/example" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/example" -j "$jobs" >/dev/null || fail "the example does not build"
"$scratch/example/custom_energy" | tee "$scratch/example.out"
grep -q "all checks passed" "$scratch/example.out" || fail "the example's checks failed"
grep -q "from $prefix/share/ebl/digits.csv.gz" "$scratch/example.out" ||
  fail "the example did not read the installed digits"

# 3
cat >"$scratch/pc.cpp" <<'CPP'
#include <fmt/format.h>
#include "autodiff/ops.hpp"
#include "autodiff/version.hpp"
#include "datasets/images.hpp"
int main() {
  ebl::Tape<double> t;
  auto x = t.input(ebl::Array<double>{1.0, 2.0}, true);
  t.backward(ebl::sum(ebl::square(x)), {x});
  fmt::print("ebl {} via pkg-config: d/dx sum x^2 = [{}, {}]\n", ebl::kVersion, t.grad(x)(0), t.grad(x)(1));
  // the data directory reaches pkg-config consumers intact (its quotes survive)
  const ebl::LabeledData d = ebl::load_digits_csv(ebl::default_digits_path());
  fmt::print("{} digits from {}\n", d.size(), ebl::default_digits_path().string());
  return t.grad(x)(1) == 4.0 && d.size() > 1000 ? 0 : 1;
}
CPP
# built by make, as pkg-config's flags are meant to be used: make hands the command to the shell,
# which reads the escaped quotes of -DEBL_DEFAULT_DATA_DIR=\"...\" as quotes. (No -std: the .pc
# file says C++20, as the CMake target does.)
pcpath=$(cd "$prefix/lib/pkgconfig" && pwd)
cat >"$scratch/Makefile" <<MAKE
CXXFLAGS := \$(shell PKG_CONFIG_PATH=$pcpath pkg-config --cflags ebl)
LDLIBS := \$(shell PKG_CONFIG_PATH=$pcpath pkg-config --libs ebl)
pc: pc.cpp
MAKE
make -s -C "$scratch" pc >/dev/null || fail "a program built with pkg-config's flags does not build"
"$scratch/pc" || fail "the pkg-config program gave a wrong gradient"

# 4
"$prefix/bin/ebl-rbm" --version
"$prefix/bin/ebl-demo" >/dev/null || fail "the installed ebl-demo failed"
"$prefix/bin/ebl-rbm" --smoke --out "$scratch/runs" >/dev/null 2>&1 || fail "installed ebl-rbm failed"
mv "$prefix/share/ebl/digits.csv.gz" "$scratch/digits.csv.gz"
printf 'not gzip' | gzip -c | head -c 10 >"$prefix/share/ebl/digits.csv.gz"
if "$prefix/bin/ebl-rbm" --smoke --out "$scratch/runs" 2>"$scratch/err" >/dev/null; then
  fail "ebl-rbm did not read the installed (spoiled) digits"
fi
grep -q "$prefix/share/ebl/digits.csv.gz" "$scratch/err" || fail "unexpected error: $(cat "$scratch/err")"
mkdir -p "$scratch/elsewhere" && cp "$scratch/digits.csv.gz" "$scratch/elsewhere/"
EBL_DATA_DIR="$scratch/elsewhere" "$prefix/bin/ebl-rbm" --smoke --out "$scratch/runs" >/dev/null 2>&1 ||
  fail "EBL_DATA_DIR did not point ebl-rbm at the data"
mv "$scratch/digits.csv.gz" "$prefix/share/ebl/digits.csv.gz"  # (unspoiled again)

# 5
if [ -e "$build/python/ebl/__init__.py" ]; then
  python=$(sed -n 's/^Python_EXECUTABLE:[A-Z]*=//p' "$build/CMakeCache.txt")
  site=$(ls -d "$prefix"/lib/python3*/dist-packages)
  [ -e "$site/ebl/__init__.py" ] || fail "the Python package is not installed under $prefix/lib"
  (cd "$scratch" && PYTHONPATH="$site" "$python" - "$prefix" <<'PY') || fail "the installed Python package does not work"
import sys, numpy as np, ebl
assert ebl.__file__.startswith(sys.argv[1]), ebl.__file__
e = ebl.MlpEnergy(2, [8], seed=0)
x, stats = ebl.MALA(e, steps=10).run(np.zeros((3, 2)), ebl.Rng(0))
assert ebl.gradcheck(lambda t, v: e(t, v), [np.ones((2, 2))]).ok
assert ebl.digits_path() == sys.argv[1] + "/share/ebl/digits.csv.gz", ebl.digits_path()
assert ebl.load_digits()[0].shape == (1797, 64)
print("ebl", ebl.__version__, "imported from", ebl.__file__)
PY
fi
# 6
/usr/bin/python3 "$src/tests/tools/doc_programs.py" "$src" "$scratch/docs"
cmake -S "$scratch/docs" -B "$scratch/docs/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/docs/build" -j "$jobs" >/dev/null || fail "a program of the docs does not build"
while read -r p; do
  (cd "$scratch" && "$scratch/docs/build/$p" >"$scratch/docs/$p.out" 2>&1) ||
    fail "the docs' program $p failed: $(tail -3 "$scratch/docs/$p.out")"
  echo "docs program $p: $(tail -1 "$scratch/docs/$p.out")"
done <"$scratch/docs/programs.txt"
echo "install checks passed"
