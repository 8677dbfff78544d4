// Properties of molecules with RDKit's C++ descriptors, and QED.
//
// QED (Bickerton, Paolini, Besnard, Muresan & Hopkins, "Quantifying the chemical beauty of drugs",
// Nature Chemistry 4, 90–98, 2012): each of eight properties x_i is mapped to a desirability by
// an asymmetric double sigmoid fitted to approved drugs,
//     d(x) = [A + B / (1 + e^{-(x - C + D/2)/E}) · (1 - 1 / (1 + e^{-(x - C - D/2)/F}))] / DMAX,
// and QED = exp(Σ w_i ln d_i / Σ w_i), with the paper's "mean" weights. Debian 12's RDKit
// (2022.09) has QED only in Python (rdkit.Chem.QED); this is the same computation from the same
// C++ descriptors, so the two agree to rounding (tests/molecules/check_qed_oracle.py checks it on
// QM9 against python3-rdkit). The inputs, as RDKit's Python module defines them (after removing
// explicit hydrogens):
//   MW      average molecular weight (hydrogens included)
//   ALOGP   Wildman–Crippen logP
//   HBA     Σ over the paper's 11 acceptor patterns of their (unique) matches
//   HBD     Lipinski donors (RDKit's NumHBD)
//   PSA     topological polar surface area (N and O only)
//   ROTB    rotatable bonds, strict definition
//   AROM    rings (SSSR) left once the atoms of aliphatic rings are deleted
//   ALERTS  how many of the paper's 116 structural alerts match
// The parameters A..DMAX, the weights and the SMARTS below are the paper's (its supplementary
// information), as RDKit's QED module lists them.
#include <GraphMol/ChemTransforms/ChemTransforms.h>
#include <GraphMol/Descriptors/Crippen.h>
#include <GraphMol/Descriptors/Lipinski.h>
#include <GraphMol/Descriptors/MolDescriptors.h>
#include <GraphMol/Descriptors/MolSurf.h>
#include <GraphMol/GraphMol.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/SmilesParse/SmilesParse.h>
#include <GraphMol/Substruct/SubstructMatch.h>

#include <cmath>
#include <memory>

#include "molecules/molecule.hpp"
#include "molecules/rdkit_detail.h"

namespace ebl::mol {

namespace {

struct Ads {
  double a, b, c, d, e, f, dmax;
  double operator()(double x) const {
    const double exp1 = 1 + std::exp(-(x - c + d / 2) / e);
    const double exp2 = 1 + std::exp(-(x - c - d / 2) / f);
    return (a + b / exp1 * (1 - 1 / exp2)) / dmax;
  }
};

// MW, ALOGP, HBA, HBD, PSA, ROTB, AROM, ALERTS
constexpr Ads kAds[8] = {
    {2.817065973, 392.5754953, 290.7489764, 2.419764353, 49.22325677, 65.37051707, 104.9805561},
    {3.172690585, 137.8624751, 2.534937431, 4.581497897, 0.822739154, 0.576295591, 131.3186604},
    {2.948620388, 160.4605972, 3.615294657, 4.435986202, 0.290141953, 1.300669958, 148.7763046},
    {1.618662227, 1010.051101, 0.985094388, 0.000000001, 0.713820843, 0.920922555, 258.1632616},
    {1.876861559, 125.2232657, 62.90773554, 87.83366614, 12.01999824, 28.51324732, 104.5686167},
    {0.010000000, 272.4121427, 2.558379970, 1.565547684, 1.271567166, 2.758063707, 105.4420403},
    {3.217788970, 957.7374108, 2.274627939, 0.000000001, 1.317690384, 0.375760881, 312.3372610},
    {0.010000000, 1199.094025, -0.09002883, 0.000000001, 0.185904477, 0.875193782, 417.7253140},
};
constexpr double kWeightMean[8] = {0.66, 0.46, 0.05, 0.61, 0.06, 0.65, 0.48, 0.95};

const char* const kAcceptorSmarts[] = {
    R"([oH0;X2])",
    R"([OH1;X2;v2])",
    R"([OH0;X2;v2])",
    R"([OH0;X1;v2])",
    R"([O-;X1])",
    R"([SH0;X2;v2])",
    R"([SH0;X1;v2])",
    R"([S-;X1])",
    R"([nH0;X2])",
    R"([NH0;X1;v3])",
    R"([$([N;+0;X3;v3]);!$(N[C,S]=O)])",
};

const char* const kAlertSmarts[] = {
    R"(*1[O,S,N]*1)",
    R"([S,C](=[O,S])[F,Br,Cl,I])",
    R"([CX4][Cl,Br,I])",
    R"([#6]S(=O)(=O)O[#6])",
    R"([$([CH]),$(CC)]#CC(=O)[#6])",
    R"([$([CH]),$(CC)]#CC(=O)O[#6])",
    R"(n[OH])",
    R"([$([CH]),$(CC)]#CS(=O)(=O)[#6])",
    R"(C=C(C=O)C=O)",
    R"(n1c([F,Cl,Br,I])cccc1)",
    R"([CH1](=O))",
    R"([#8][#8])",
    R"([C;!R]=[N;!R])",
    R"([N!R]=[N!R])",
    R"([#6](=O)[#6](=O))",
    R"([#16][#16])",
    R"([#7][NH2])",
    R"(C(=O)N[NH2])",
    R"([#6]=S)",
    R"([$([CH2]),$([CH][CX4]),$(C([CX4])[CX4])]=[$([CH2]),$([CH][CX4]),$(C([CX4])[CX4])])",
    R"(C1(=[O,N])C=CC(=[O,N])C=C1)",
    R"(C1(=[O,N])C(=[O,N])C=CC=C1)",
    R"(a21aa3a(aa1aaaa2)aaaa3)",
    R"(a31a(a2a(aa1)aaaa2)aaaa3)",
    R"(a1aa2a3a(a1)A=AA=A3=AA=A2)",
    R"(c1cc([NH2])ccc1)",
    R"([Hg,Fe,As,Sb,Zn,Se,se,Te,B,Si,Na,Ca,Ge,Ag,Mg,K,Ba,Sr,Be,Ti,Mo,Mn,Ru,Pd,Ni,Cu,Au,Cd,Al,Ga,Sn,Rh,Tl,Bi,Nb,Li,Pb,Hf,Ho])",
    R"(I)",
    R"(OS(=O)(=O)[O-])",
    R"([N+](=O)[O-])",
    R"(C(=O)N[OH])",
    R"(C1NC(=O)NC(=O)1)",
    R"([SH])",
    R"([S-])",
    R"(c1ccc([Cl,Br,I,F])c([Cl,Br,I,F])c1[Cl,Br,I,F])",
    R"(c1cc([Cl,Br,I,F])cc([Cl,Br,I,F])c1[Cl,Br,I,F])",
    R"([CR1]1[CR1][CR1][CR1][CR1][CR1][CR1]1)",
    R"([CR1]1[CR1][CR1]cc[CR1][CR1]1)",
    R"([CR2]1[CR2][CR2][CR2][CR2][CR2][CR2][CR2]1)",
    R"([CR2]1[CR2][CR2]cc[CR2][CR2][CR2]1)",
    R"([CH2R2]1N[CH2R2][CH2R2][CH2R2][CH2R2][CH2R2]1)",
    R"([CH2R2]1N[CH2R2][CH2R2][CH2R2][CH2R2][CH2R2][CH2R2]1)",
    R"(C#C)",
    R"([OR2,NR2]@[CR2]@[CR2]@[OR2,NR2]@[CR2]@[CR2]@[OR2,NR2])",
    R"([$([N+R]),$([n+R]),$([N+]=C)][O-])",
    R"([#6]=N[OH])",
    R"([#6]=NOC=O)",
    R"([#6](=O)[CX4,CR0X3,O][#6](=O))",
    R"(c1ccc2c(c1)ccc(=O)o2)",
    R"([O+,o+,S+,s+])",
    R"(N=C=O)",
    R"([NX3,NX4][F,Cl,Br,I])",
    R"(c1ccccc1OC(=O)[#6])",
    R"([CR0]=[CR0][CR0]=[CR0])",
    R"([C+,c+,C-,c-])",
    R"(N=[N+]=[N-])",
    R"(C12C(NC(N1)=O)CSC2)",
    R"(c1c([OH])c([OH,NH2,NH])ccc1)",
    R"(P)",
    R"([N,O,S]C#N)",
    R"(C=C=O)",
    R"([Si][F,Cl,Br,I])",
    R"([SX2]O)",
    R"([SiR0,CR0](c1ccccc1)(c2ccccc2)(c3ccccc3))",
    R"(O1CCCCC1OC2CCC3CCCCC3C2)",
    R"(N=[CR0][N,n,O,S])",
    R"([cR2]1[cR2][cR2]([Nv3X3,Nv4X4])[cR2][cR2][cR2]1[cR2]2[cR2][cR2][cR2]([Nv3X3,Nv4X4])[cR2][cR2]2)",
    R"(C=[C!r]C#N)",
    R"([cR2]1[cR2]c([N+0X3R0,nX3R0])c([N+0X3R0,nX3R0])[cR2][cR2]1)",
    R"([cR2]1[cR2]c([N+0X3R0,nX3R0])[cR2]c([N+0X3R0,nX3R0])[cR2]1)",
    R"([cR2]1[cR2]c([N+0X3R0,nX3R0])[cR2][cR2]c1([N+0X3R0,nX3R0]))",
    R"([OH]c1ccc([OH,NH2,NH])cc1)",
    R"(c1ccccc1OC(=O)O)",
    R"([SX2H0][N])",
    R"(c12ccccc1(SC(S)=N2))",
    R"(c12ccccc1(SC(=S)N2))",
    R"(c1nnnn1C=O)",
    R"(s1c(S)nnc1NC=O)",
    R"(S1C=CSC1=S)",
    R"(C(=O)Onnn)",
    R"(OS(=O)(=O)C(F)(F)F)",
    R"(N#CC[OH])",
    R"(N#CC(=O))",
    R"(S(=O)(=O)C#N)",
    R"(N[CH2]C#N)",
    R"(C1(=O)NCC1)",
    R"(S(=O)(=O)[O-,OH])",
    R"(NC[F,Cl,Br,I])",
    R"(C=[C!r]O)",
    R"([NX2+0]=[O+0])",
    R"([OR0,NR0][OR0,NR0])",
    R"(C(=O)O[C,H1].C(=O)O[C,H1].C(=O)O[C,H1])",
    R"([CX2R0][NX3R0])",
    R"(c1ccccc1[C;!R]=[C;!R]c2ccccc2)",
    R"([NX3R0,NX4R0,OR0,SX2R0][CX4][NX3R0,NX4R0,OR0,SX2R0])",
    R"([s,S,c,C,n,N,o,O]~[n+,N+](~[s,S,c,C,n,N,o,O])(~[s,S,c,C,n,N,o,O])~[s,S,c,C,n,N,o,O])",
    R"([s,S,c,C,n,N,o,O]~[nX3+,NX3+](~[s,S,c,C,n,N])~[s,S,c,C,n,N])",
    R"([*]=[N+]=[*])",
    R"([SX3](=O)[O-,OH])",
    R"(N#N)",
    R"(F.F.F.F)",
    R"([R0;D2][R0;D2][R0;D2][R0;D2])",
    R"([cR,CR]~C(=O)NC(=O)~[cR,CR])",
    R"(C=!@CC=[O,S])",
    R"([#6,#8,#16][#6](=O)O[#6])",
    R"(c[C;R0](=[O,S])[#6])",
    R"(c[SX2][C;!R])",
    R"(C=C=C)",
    R"(c1nc([F,Cl,Br,I,S])ncc1)",
    R"(c1ncnc([F,Cl,Br,I,S])c1)",
    R"(c1nc(c2c(n1)nc(n2)[F,Cl,Br,I]))",
    R"([#6]S(=O)(=O)c1ccc(cc1)F)",
    R"([15N])",
    R"([13C])",
    R"([18O])",
    R"([34S])",
};

struct Patterns {
  std::vector<std::unique_ptr<RDKit::RWMol>> acceptors, alerts;
  std::unique_ptr<RDKit::RWMol> aliphatic_rings;
  Patterns() {
    for (const char* s : kAcceptorSmarts) acceptors.emplace_back(RDKit::SmartsToMol(s));
    for (const char* s : kAlertSmarts) alerts.emplace_back(RDKit::SmartsToMol(s));
    aliphatic_rings.reset(RDKit::SmartsToMol("[$([A;R][!a])]"));
  }
};

const Patterns& patterns() {
  static const Patterns p;  // parsed once, on first use
  return p;
}

std::unique_ptr<RDKit::RWMol> parse_or_throw(const std::string& smiles) {
  auto m = detail::parse_smiles(smiles);
  if (!m) throw std::invalid_argument("RDKit cannot parse or sanitise the SMILES '" + smiles + "'");
  return m;
}

std::array<double, 8> inputs_of(const RDKit::ROMol& with_hs) {
  std::unique_ptr<RDKit::ROMol> mol(RDKit::MolOps::removeHs(with_hs));
  const Patterns& p = patterns();
  std::vector<RDKit::MatchVectType> matches;
  double hba = 0;
  for (const auto& q : p.acceptors) hba += RDKit::SubstructMatch(*mol, *q, matches);
  double alerts = 0;
  RDKit::MatchVectType one;
  for (const auto& q : p.alerts) alerts += RDKit::SubstructMatch(*mol, *q, one) ? 1 : 0;
  std::unique_ptr<RDKit::ROMol> arom(RDKit::deleteSubstructs(*mol, *p.aliphatic_rings));
  return {RDKit::Descriptors::calcAMW(*mol),
          RDKit::Descriptors::calcClogP(*mol),
          hba,
          double(RDKit::Descriptors::calcNumHBD(*mol)),
          RDKit::Descriptors::calcTPSA(*mol),
          double(RDKit::Descriptors::calcNumRotatableBonds(*mol, RDKit::Descriptors::Strict)),
          double(RDKit::MolOps::findSSSR(*arom)),
          alerts};
}

}  // namespace

double qed_from_inputs(const std::array<double, 8>& x) {
  double t = 0, w = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    t += kWeightMean[i] * std::log(kAds[i](x[i]));
    w += kWeightMean[i];
  }
  return std::exp(t / w);
}

std::array<double, 8> qed_inputs(const std::string& smiles) {
  return inputs_of(*parse_or_throw(smiles));
}

std::optional<Properties> properties(const std::string& smiles) {
  const auto m = detail::parse_smiles(smiles);
  if (!m) return std::nullopt;
  Properties p;
  p.qed = qed_from_inputs(inputs_of(*m));
  p.logp = RDKit::Descriptors::calcClogP(*m);
  p.tpsa = RDKit::Descriptors::calcTPSA(*m);
  p.mw = RDKit::Descriptors::calcAMW(*m);
  p.rings = int(RDKit::Descriptors::calcNumRings(*m));
  return p;
}

}  // namespace ebl::mol
