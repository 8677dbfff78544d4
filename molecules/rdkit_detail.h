// Internal to molecules/*.cpp (RDKit types: not part of the library's headers, so a .h that the
// header checks, which compile every .hpp without RDKit, leave alone).
#pragma once

#include <exception>
#include <memory>
#include <string>

#include <GraphMol/GraphMol.h>
#include <GraphMol/SmilesParse/SmilesParse.h>

namespace ebl::mol::detail {

/// RDKit parses and sanitises; nullptr when it cannot (it says so by a null or by throwing).
inline std::unique_ptr<RDKit::RWMol> parse_smiles(const std::string& smiles) {
  try {
    return std::unique_ptr<RDKit::RWMol>(RDKit::SmilesToMol(smiles));
  } catch (const std::exception&) {
    return nullptr;
  }
}

}  // namespace ebl::mol::detail
