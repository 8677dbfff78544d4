// Molecules through RDKit: QM9's SMILES -> graphs -> SMILES, the skipped molecules, the valence
// correction, and the generation metrics on hand-built sets. (QED and the descriptors against
// python3-rdkit: check_qed_oracle.py.)
#include <catch2/catch.hpp>

#include <set>

#include "datasets/qm9.hpp"
#include "molecules/molecule.hpp"

using namespace ebl;
using namespace ebl::mol;

TEST_CASE("QM9 SMILES -> graph -> SMILES gives RDKit's canonical SMILES", "[molecules]") {
  const std::vector<std::string> all = load_qm9_smiles();
  REQUIRE(all.size() == 133885);
  // every 7th molecule: 19,127 of them. Expected skips: a formal charge written in brackets, or
  // a nitro group written neutral and pentavalent, N(=O)=O, which RDKit's sanitisation turns
  // into its charge-separated form [N+](=O)[O-] (140 of QM9's molecules).
  std::size_t encoded = 0, skipped = 0, charged = 0;
  for (std::size_t i = 0; i < all.size(); i += 7) {
    const std::string& s = all[i];
    const bool has_charge = s.find('+') != std::string::npos || s.find('-') != std::string::npos ||
                            s.find("N(=O)") != std::string::npos;
    charged += has_charge;
    Encoded e = encode_smiles(s, 9);
    if (e.skip != Skip::None) {
      ++skipped;
      INFO(s << ": " << skip_name(e.skip));
      REQUIRE(e.skip ==
              Skip::Charge);  // the only molecules QM9 has that are not C, N, O, F neutral
      REQUIRE(has_charge);
      continue;
    }
    ++encoded;
    const auto back = graph_to_smiles(e.graph);
    INFO(s);
    REQUIRE(back.has_value());
    REQUIRE(*back == canonical_smiles(s));
    REQUIRE(e.canonical == *back);
    REQUIRE(e.graph.node_count() == std::size_t(std::count_if(s.begin(), s.end(), [](char c) {
              return c == 'C' || c == 'N' || c == 'O' || c == 'F';
            })));
  }
  CHECK(skipped == charged);
  CHECK(encoded > 18000);
}

TEST_CASE("skips are named: element, charge, size, unparsable", "[molecules]") {
  CHECK(encode_smiles("CCS", 9).skip == Skip::Element);
  CHECK(encode_smiles("C[NH3+]", 9).skip == Skip::Charge);
  CHECK(encode_smiles("CCCCCCCCCC", 9).skip == Skip::TooLarge);
  CHECK(encode_smiles("C1CC", 9).skip == Skip::Unparsable);
  CHECK(encode_smiles("[CH3]", 9).skip == Skip::Radical);
  Encoded ok = encode_smiles("c1ccccc1O", 9);  // aromatic input is kekulized
  REQUIRE(ok.skip == Skip::None);
  int doubles = 0;
  for (std::size_t i = 0; i < 9; ++i)
    for (std::size_t j = i + 1; j < 9; ++j) doubles += ok.graph.edge(i, j) == 1;
  CHECK(doubles == 3);
  CHECK(*graph_to_smiles(ok.graph) == "Oc1ccccc1");
}

TEST_CASE("the valence correction always yields a molecule RDKit sanitises", "[molecules]") {
  Rng rng(3);
  int corrected = 0, invalid = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    MolGraph g = empty_molecule(9);
    for (std::size_t i = 0; i < 9; ++i) g.nodes[i] = int(rng.below(5));
    for (std::size_t i = 0; i < 9; ++i)
      for (std::size_t j = i + 1; j < 9; ++j)
        g.set_edge(i, j, rng.bernoulli(0.35) ? int(rng.below(3)) : kNoBond);
    Decoded d = decode(g);
    if (g.node_count() == 0) {
      CHECK(d.corrected.empty());
      continue;
    }
    REQUIRE(!d.corrected.empty());
    INFO(d.corrected);
    // sanitisable, one fragment, canonical already
    REQUIRE(canonical_smiles(d.corrected) == d.corrected);
    REQUIRE(d.corrected.find('.') == std::string::npos);
    if (d.valid) {
      CHECK(d.bonds_lowered == 0);
      CHECK(d.smiles == d.corrected);
    } else {
      ++invalid;
      corrected += d.bonds_lowered > 0;
    }
  }
  CHECK(invalid > 1000);   // random graphs are mostly invalid...
  CHECK(corrected > 500);  // ...and the correction had work to do
}

TEST_CASE("validity: over-valent and disconnected graphs are invalid as they are", "[molecules]") {
  MolGraph g = empty_molecule(9);
  g.nodes[0] = 2, g.nodes[1] = 2;  // O=O: valid
  g.set_edge(0, 1, 1);
  CHECK(decode(g).valid);
  CHECK(decode(g).smiles == "O=O");
  g.set_edge(0, 1, 2);  // O#O: over-valent; corrected by lowering to O=O
  Decoded d = decode(g);
  CHECK_FALSE(d.valid);
  CHECK(d.corrected == "O=O");
  CHECK(d.bonds_lowered == 1);
  g.set_edge(0, 1, 0);
  g.nodes[2] = 0, g.nodes[3] = 0, g.nodes[4] = 0;  // OO and a separate CCC chain
  g.set_edge(2, 3, 0);
  g.set_edge(3, 4, 0);
  d = decode(g);
  CHECK_FALSE(d.valid);  // two fragments
  CHECK(d.corrected == "CCC");
  CHECK(d.bonds_lowered == 0);
  CHECK_FALSE(decode(empty_molecule(9)).valid);
}

TEST_CASE("generation metrics on a hand-built set", "[molecules]") {
  auto graph_of = [](const std::string& s) { return encode_smiles(s, 9).graph; };
  MolGraph over = empty_molecule(9);
  over.nodes[0] = 3, over.nodes[1] = 3;  // F=F: corrected to FF
  over.set_edge(0, 1, 1);
  std::vector<Decoded> d{decode(graph_of("CCO")), decode(graph_of("CCO")), decode(graph_of("CC#N")),
                         decode(over), decode(empty_molecule(9))};
  const std::unordered_set<std::string> training{"CCO"};
  GenerationMetrics m = generation_metrics(d, training);
  CHECK(m.generated == 5);
  CHECK(m.validity == Approx(3.0 / 5));            // CCO, CCO, CC#N
  CHECK(m.validity_corrected == Approx(4.0 / 5));  // + FF
  CHECK(m.uniqueness == Approx(3.0 / 4));          // CCO, CC#N, FF
  CHECK(m.novelty == Approx(2.0 / 4));             // CC#N, FF
}

TEST_CASE("properties of known molecules", "[molecules]") {
  auto p = properties("c1ccccc1O");
  REQUIRE(p);
  CHECK(p->mw == Approx(94.113).margin(1e-3));
  CHECK(p->rings == 1);
  CHECK(p->tpsa == Approx(20.23).margin(1e-2));
  CHECK(p->qed > 0);
  CHECK(p->qed < 1);
  CHECK_FALSE(properties("C1CC").has_value());
  CHECK_THROWS_WITH(qed_inputs("C1CC"), Catch::Contains("cannot parse"));
}

TEST_CASE("valences are checked as MoFlow checks them: C-N(=O)=O is invalid, then corrected",
          "[molecules]") {
  // RDKit's full sanitisation first rewrites N(=O)=O as [N+](=O)[O-], which made this graph valid
  // with charges kept; MoFlow's check_valency (SANITIZE_PROPERTIES only) rejects it, and its
  // correction lowers N's highest-order bonds until N's valence is 3.
  auto nitro = [](int second_bond) {
    MolGraph g = empty_molecule(9);
    g.nodes[0] = 0, g.nodes[1] = 1, g.nodes[2] = 2, g.nodes[3] = 2;  // C, N, O, O
    g.set_edge(0, 1, 0);                                             // C-N
    g.set_edge(1, 2, 1);                                             // N=O
    g.set_edge(1, 3, second_bond);                                   // N=O or N-O
    return g;
  };
  for (const int second : {1, 0}) {  // C-N(=O)=O (valence 5) and C-N(=O)-O (valence 4)
    INFO("second N-O bond order " << second + 1);
    const Decoded d = decode(nitro(second));
    CHECK_FALSE(d.valid);
    CHECK(d.corrected == "CN(O)O");
    CHECK(d.corrected.find('+') == std::string::npos);  // no charges kept
    CHECK(d.bonds_lowered == second + 1);
  }
  // a graph with valid valences is untouched: C-N=O
  MolGraph ok = empty_molecule(9);
  ok.nodes[0] = 0, ok.nodes[1] = 1, ok.nodes[2] = 2;
  ok.set_edge(0, 1, 0);
  ok.set_edge(1, 2, 1);
  CHECK(decode(ok).valid);
  CHECK(decode(ok).smiles == "CN=O");
}
