// SMILES <-> MolGraph, decoding with MoFlow's valence correction, properties and drawing, with
// RDKit's C++ library. See molecule.hpp.
#include "molecules/molecule.hpp"

#include <algorithm>
#include <cctype>
#include <memory>

#include <fmt/format.h>

#include <GraphMol/Descriptors/Crippen.h>
#include <GraphMol/Descriptors/MolDescriptors.h>
#include <GraphMol/Descriptors/MolSurf.h>
#include <GraphMol/GraphMol.h>
#include <GraphMol/MolDraw2D/MolDraw2DCairo.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/SanitException.h>
#include <GraphMol/SmilesParse/SmilesParse.h>
#include <GraphMol/SmilesParse/SmilesWrite.h>

#include "io/files.hpp"
#include "molecules/rdkit_detail.h"

namespace ebl::mol {

namespace {

using detail::parse_smiles;

RDKit::Bond::BondType bond_type(int code) {
  static constexpr RDKit::Bond::BondType types[] = {RDKit::Bond::SINGLE, RDKit::Bond::DOUBLE,
                                                    RDKit::Bond::TRIPLE};
  return types[code];
}

// The molecule of a graph's atoms (`none` rows dropped, the others renumbered in order) and the
// bonds between them, not sanitised.
std::unique_ptr<RDKit::RWMol> build(const MolGraph& g) {
  auto m = std::make_unique<RDKit::RWMol>();
  std::vector<int> index(g.n, -1);
  for (std::size_t i = 0; i < g.n; ++i)
    if (g.nodes[i] != kNoAtom) {
      auto* a = new RDKit::Atom(kAtomicNumbers.at(std::size_t(g.nodes[i])));
      index[i] = int(m->addAtom(a, false, true));
    }
  for (std::size_t i = 0; i < g.n; ++i)
    for (std::size_t j = i + 1; j < g.n; ++j)
      if (index[i] >= 0 && index[j] >= 0 && g.edge(i, j) != kNoBond)
        m->addBond(unsigned(index[i]), unsigned(index[j]), bond_type(g.edge(i, j)));
  return m;
}

// Sanitises in place; on a valence error returns the offending atom's index, else -1 (success).
// Any other sanitisation failure (none is expected for neutral C, N, O, F with kekulé bonds)
// returns -2.
// NOTE: valences are checked first with SANITIZE_PROPERTIES alone, as MoFlow's check_valency does:
// RDKit's full sanitisation starts with a clean-up that rewrites an over-valent N(=O)=O as the
// charge-separated [N+](=O)[O-], which would make C-N(=O)=O valid here and not in MoFlow (1.4% of
// corrected graphs differed). Only a molecule whose valences pass gets the full sanitisation.
int sanitize(RDKit::RWMol& m) {
  try {
    unsigned int failed = 0;
    RDKit::MolOps::sanitizeMol(m, failed, RDKit::MolOps::SANITIZE_PROPERTIES);
    RDKit::MolOps::sanitizeMol(m);
    return -1;
  } catch (const RDKit::AtomValenceException& e) {
    return int(e.getAtomIdx());
  } catch (const std::exception&) {
    return -2;
  }
}

}  // namespace

const char* skip_name(Skip s) {
  switch (s) {
    case Skip::None:
      return "none";
    case Skip::Unparsable:
      return "unparsable";
    case Skip::Element:
      return "element other than C, N, O, F";
    case Skip::Charge:
      return "formal charge";
    case Skip::Radical:
      return "radical";
    case Skip::TooLarge:
      return "too many heavy atoms";
  }
  return "?";
}

// An upper bound on the atoms RDKit will parse from a SMILES, read off its characters: a
// bracket atom counts once, every other letter once (so Cl, Br count twice: still a bound).
// Explicit hydrogens count too, so a SMILES of max_atoms heavy atoms has at most 5 * max_atoms
// of them (four H's on each); anything longer is too large without asking RDKit, whose parse
// of a long string is slow (a line of 8,000 C's took minutes).
namespace {
std::size_t atom_bound(const std::string& smiles) {
  std::size_t n = 0;
  bool in_bracket = false;
  for (char ch : smiles) {
    if (ch == '[') {
      in_bracket = true;
      ++n;
    } else if (ch == ']') {
      in_bracket = false;
    } else if (!in_bracket && std::isalpha(static_cast<unsigned char>(ch))) {
      ++n;
    }
  }
  return n;
}
}  // namespace

Encoded encode_smiles(const std::string& smiles, std::size_t max_atoms) {
  Encoded out{empty_molecule(max_atoms), Skip::None, {}};
  if (atom_bound(smiles) > 5 * max_atoms) {
    out.skip = Skip::TooLarge;
    return out;
  }
  auto m = parse_smiles(smiles);
  if (!m) {
    out.skip = Skip::Unparsable;
    return out;
  }
  if (m->getNumAtoms() > max_atoms) out.skip = Skip::TooLarge;
  for (const RDKit::Atom* a : m->atoms()) {
    const int z = a->getAtomicNum();
    if (std::find(kAtomicNumbers.begin(), kAtomicNumbers.end(), z) == kAtomicNumbers.end())
      out.skip = Skip::Element;
    else if (a->getFormalCharge() != 0 && out.skip == Skip::None)
      out.skip = Skip::Charge;
    else if (a->getNumRadicalElectrons() != 0 && out.skip == Skip::None)
      out.skip = Skip::Radical;
  }
  if (out.skip != Skip::None) return out;
  out.canonical = RDKit::MolToSmiles(*m);  // before kekulization clears the aromatic flags
  RDKit::MolOps::Kekulize(*m, true);
  for (const RDKit::Atom* a : m->atoms())
    out.graph.nodes[a->getIdx()] =
        int(std::find(kAtomicNumbers.begin(), kAtomicNumbers.end(), a->getAtomicNum()) -
            kAtomicNumbers.begin());
  for (const RDKit::Bond* b : m->bonds()) {
    int code = 0;
    switch (b->getBondType()) {
      case RDKit::Bond::SINGLE:
        code = 0;
        break;
      case RDKit::Bond::DOUBLE:
        code = 1;
        break;
      case RDKit::Bond::TRIPLE:
        code = 2;
        break;
      default:
        throw std::logic_error(
            fmt::format("encode_smiles: bond of order {} in {} after kekulization",
                        b->getBondTypeAsDouble(), smiles));
    }
    out.graph.set_edge(b->getBeginAtomIdx(), b->getEndAtomIdx(), code);
  }
  return out;
}

std::string canonical_smiles(const std::string& smiles) {
  auto m = parse_smiles(smiles);
  return m ? RDKit::MolToSmiles(*m) : std::string();
}

std::optional<std::string> graph_to_smiles(const MolGraph& g) {
  auto m = build(g);
  if (m->getNumAtoms() == 0 || sanitize(*m) != -1) return std::nullopt;
  std::vector<int> frag;
  if (RDKit::MolOps::getMolFrags(*m, frag) != 1) return std::nullopt;
  return RDKit::MolToSmiles(*m);
}

// The graph as it is, written without sanitising it (atom order, no canonical form): what the
// generator made, valence errors included; "" if RDKit cannot write it.
static std::string raw_smiles(const RDKit::RWMol& built) {
  try {
    RDKit::RWMol m(built);
    m.updatePropertyCache(false);
    RDKit::MolOps::fastFindRings(m);
    return RDKit::MolToSmiles(m, true, false, -1, false);
  } catch (const std::exception&) {
    return "";
  }
}

Decoded decode(const MolGraph& g) {
  Decoded d;
  if (auto s = graph_to_smiles(g)) {
    d.valid = true;
    d.smiles = *s;
    d.raw = *s;
    d.corrected = *s;
    return d;
  }
  auto m = build(g);
  if (m->getNumAtoms() == 0) return d;
  d.raw = raw_smiles(*m);
  // MoFlow's correction: lower the highest-order bond of the over-valent atom, one step at a time
  for (;;) {
    const int bad = sanitize(*m);
    if (bad == -1) break;
    if (bad == -2) return d;  // not a valence problem: left undecoded (not expected, see sanitize)
    const RDKit::Atom* atom = m->getAtomWithIdx(unsigned(bad));
    RDKit::Bond* top = nullptr;
    for (RDKit::Bond* b : m->atomBonds(atom))
      if (!top || b->getBondTypeAsDouble() > top->getBondTypeAsDouble()) top = b;
    if (!top) return d;  // an atom over-valent without bonds (cannot happen for C, N, O, F)
    const unsigned u = top->getBeginAtomIdx(), v = top->getEndAtomIdx();
    const auto t = top->getBondType();
    m->removeBond(u, v);
    if (t == RDKit::Bond::DOUBLE) m->addBond(u, v, RDKit::Bond::SINGLE);
    if (t == RDKit::Bond::TRIPLE) m->addBond(u, v, RDKit::Bond::DOUBLE);
    ++d.bonds_lowered;
  }
  // the largest fragment by heavy atoms (the first of the largest: deterministic)
  auto frags = RDKit::MolOps::getMolFrags(*m, true);
  std::size_t best = 0;
  for (std::size_t k = 1; k < frags.size(); ++k)
    if (frags[k]->getNumAtoms() > frags[best]->getNumAtoms()) best = k;
  d.corrected = RDKit::MolToSmiles(*frags[best]);
  return d;
}

GenerationMetrics generation_metrics(const std::vector<Decoded>& decoded,
                                     const std::unordered_set<std::string>& training) {
  GenerationMetrics r;
  r.generated = decoded.size();
  if (decoded.empty()) return r;
  std::size_t valid = 0, corrected = 0, novel = 0;
  std::unordered_set<std::string> distinct;
  for (const auto& d : decoded) {
    valid += d.valid;
    if (d.corrected.empty()) continue;
    ++corrected;
    distinct.insert(d.corrected);
    novel += training.count(d.corrected) == 0;
  }
  const double n = double(decoded.size());
  r.validity = double(valid) / n;
  r.validity_corrected = double(corrected) / n;
  if (corrected > 0) {
    r.uniqueness = double(distinct.size()) / double(corrected);
    r.novelty = double(novel) / double(corrected);
  }
  return r;
}

void draw_grid_png(const std::vector<std::string>& smiles, const std::vector<std::string>& legends,
                   int columns, int panel_px, const std::string& path) {
  if (smiles.empty()) throw std::invalid_argument("draw_grid_png: no molecule to draw");
  if (legends.size() != smiles.size())
    throw std::invalid_argument(
        fmt::format("draw_grid_png: {} molecules but {} legends", smiles.size(), legends.size()));
  std::vector<std::unique_ptr<RDKit::RWMol>> owned;
  std::vector<RDKit::ROMol*> mols;
  for (const auto& s : smiles) {
    owned.push_back(parse_smiles(s));
    if (!owned.back()) owned.back() = std::make_unique<RDKit::RWMol>();
    mols.push_back(owned.back().get());
  }
  const int cols = std::max(1, std::min(columns, int(smiles.size())));
  const int rows = (int(smiles.size()) + cols - 1) / cols;
  RDKit::MolDraw2DCairo drawer(cols * panel_px, rows * panel_px, panel_px, panel_px);
  drawer.drawMolecules(mols, &legends);
  drawer.finishDrawing();
  write_file_atomic(path, drawer.getDrawingText());
}

}  // namespace ebl::mol
