// Molecules as graphs, through RDKit (the only code of the project that links it: library
// ebl_molecules, CMake option EBL_WITH_RDKIT). No RDKit type appears in this header: a molecule is
// a SMILES string or a MolGraph, so code that includes it needs no RDKit headers.
//
// The dense representation of the graph EBMs (GraphEBM, Liu et al. 2021; MoFlow, Zang & Wang
// 2020), for molecules of at most N heavy atoms among C, N, O, F, hydrogens implicit, kekulized:
//     atoms  X [N, 5]     one-hot over (C, N, O, F, none); rows past the molecule's atoms: none
//     bonds  A [4, N, N]  one-hot over (single, double, triple, none), symmetric; the diagonal and
//                         every pair without a bond: none
// MolGraph holds the same as integer codes (atom type per node, bond type per pair).
//
// Decoding a generated graph (decode):
//   * valid without correction: the graph of the atoms that are not `none` and the bonds between
//     them is one connected molecule that RDKit sanitises as it is;
//   * the valence correction (MoFlow's, used by GraphEBM): while some atom exceeds its valence,
//     lower the order of its highest-order bond by one (a single bond is removed); then keep the
//     largest connected fragment (by heavy atoms). The result always sanitises (an empty graph
//     stays empty: not valid).
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "datasets/graphs.hpp"

namespace ebl::mol {

inline constexpr std::size_t kAtomTypes = 5;  // C, N, O, F, none
inline constexpr std::size_t kBondTypes = 4;  // single, double, triple, none
inline constexpr int kNoAtom = 4, kNoBond = 3;
inline constexpr std::array<int, 4> kAtomicNumbers{6, 7, 8, 9};
inline constexpr std::array<const char*, 5> kAtomSymbols{"C", "N", "O", "F", "-"};

/// A molecule of at most n atoms as a TypedGraph (datasets/graphs.hpp): node codes 0..4 (C, N, O,
/// F, none), edge codes 0..3 (single, double, triple, none).
using MolGraph = TypedGraph;
inline MolGraph empty_molecule(std::size_t n) {
  return TypedGraph(n, int(kAtomTypes), int(kBondTypes));
}
inline GraphLayout molecule_layout(std::size_t n) {
  return {n, kAtomTypes, kBondTypes};
}

/// Why a SMILES was not encoded (Encoded::skip), for the counts a dataset reports.
enum class Skip { None, Unparsable, Element, Charge, Radical, TooLarge };
const char* skip_name(Skip s);

struct Encoded {
  MolGraph graph;
  Skip skip = Skip::None;
  std::string canonical;  ///< RDKit's canonical SMILES (when not skipped)
};

/// SMILES -> MolGraph of `max_atoms` nodes (RDKit parses and sanitises it, then kekulizes;
/// atoms in the order of the SMILES). Skipped, with the reason: unparsable, an element other than
/// C, N, O, F, a formal charge, a radical, more than max_atoms heavy atoms.
Encoded encode_smiles(const std::string& smiles, std::size_t max_atoms);

/// RDKit's canonical SMILES of a SMILES ("" when RDKit cannot parse or sanitise it).
std::string canonical_smiles(const std::string& smiles);

/// The canonical SMILES of a graph taken as it is (no correction); nullopt when it has no atom,
/// or is not one connected molecule that RDKit sanitises.
std::optional<std::string> graph_to_smiles(const MolGraph& g);

struct Decoded {
  bool valid = false;     ///< valid without correction (one sanitisable connected molecule)
  std::string smiles;     ///< canonical SMILES when valid (else "")
  std::string raw;        ///< the graph as generated, unsanitised (= smiles when valid)
  std::string corrected;  ///< after the valence correction, largest fragment ("" if empty)
  int bonds_lowered = 0;  ///< steps the correction took (0 for a valid graph)
};
Decoded decode(const MolGraph& g);

/// The generation metrics of MoFlow and GraphEBM over n generated graphs:
///   validity            valid without correction / n
///   validity_corrected  non-empty after the valence correction / n
///   uniqueness          distinct corrected SMILES / corrected molecules
///   novelty             corrected molecules whose SMILES is not in the training set / corrected
///                       molecules
/// (SMILES canonical throughout; `training` holds the training set's canonical SMILES).
struct GenerationMetrics {
  std::size_t generated = 0;
  double validity = 0, validity_corrected = 0, uniqueness = 0, novelty = 0;
};
GenerationMetrics generation_metrics(const std::vector<Decoded>& decoded,
                                     const std::unordered_set<std::string>& training);

/// Properties of a molecule, with RDKit's C++ descriptors; QED as Bickerton et al. (2012) define
/// it (weights "mean"), computed as RDKit's Python Chem.QED does (see qed.cpp).
struct Properties {
  double qed = 0, logp = 0, tpsa = 0, mw = 0;
  int rings = 0;
};
/// nullopt when RDKit cannot parse or sanitise the SMILES.
std::optional<Properties> properties(const std::string& smiles);

/// QED's eight inputs (Bickerton et al. 2012): MW, ALOGP, HBA, HBD, PSA, ROTB, AROM, ALERTS.
std::array<double, 8> qed_inputs(const std::string& smiles);
/// QED = exp(Σ w_i ln d_i / Σ w_i), d_i the asymmetric double sigmoid of input i, mean weights.
double qed_from_inputs(const std::array<double, 8>& inputs);

/// Draws molecules (SMILES) in a grid, with legends, into a PNG file written atomically.
/// Molecules RDKit cannot parse are drawn as empty panels.
void draw_grid_png(const std::vector<std::string>& smiles, const std::vector<std::string>& legends,
                   int columns, int panel_px, const std::string& path);

}  // namespace ebl::mol
