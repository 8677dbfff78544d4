// Prints, for every k-th molecule of QM9 (k from argv[1], default 50), its SMILES, the properties
// the library computes (QED, logP, TPSA, MW, rings) and QED's eight inputs, tab-separated, for
// check_qed_oracle.py to compare with python3-rdkit.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <fmt/format.h>

#include "datasets/qm9.hpp"
#include "molecules/molecule.hpp"

int main(int argc, char** argv) try {
  const std::size_t every = argc > 1 ? std::size_t(std::atol(argv[1])) : 50;
  if (every == 0) throw std::invalid_argument("the stride must be >= 1");
  const auto smiles = ebl::load_qm9_smiles();
  for (std::size_t i = 0; i < smiles.size(); i += every) {
    const auto p = ebl::mol::properties(smiles[i]);
    if (!p) continue;
    const auto in = ebl::mol::qed_inputs(smiles[i]);
    fmt::print("{}\t{:.17g}\t{:.17g}\t{:.17g}\t{:.17g}\t{}", smiles[i], p->qed, p->logp, p->tpsa,
               p->mw, p->rings);
    for (double v : in) fmt::print("\t{:.17g}", v);
    fmt::print("\n");
  }
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "print_properties: {}\n", e.what());
  return 1;
}
