// craft_checkpoint: makes a checkpoint that is CRC-valid but holds what no trainer writes, for the
// hostile-input tests (tests/check_hostile_inputs.sh). It reads a real checkpoint, changes one
// entry, and saves it through Checkpoint::save, so the length and checksum are right and only the
// contents are impossible.
//   craft_checkpoint <in> <out> list
//   craft_checkpoint <in> <out> set-int <name> <value>
//   craft_checkpoint <in> <out> drop <name>                  (an array, integer or string)
//   craft_checkpoint <in> <out> set-entry <array> <flat index> <value>   (value may be nan)
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "io/checkpoint.hpp"

int main(int argc, char** argv) {
  using ebl::Checkpoint;
  if (argc < 4) {
    fmt::print(stderr, "usage: craft_checkpoint <in> <out> list|set-int|drop|set-entry ...\n");
    return 2;
  }
  try {
    Checkpoint c = Checkpoint::load(argv[1]);
    const std::string op = argv[3];
    if (op == "list") {
      for (const auto& [k, a] : c.arrays) fmt::print("array {} {}\n", k, ebl::shape_str(a.shape()));
      for (const auto& [k, v] : c.integers) fmt::print("integer {} {}\n", k, v);
      for (const auto& [k, v] : c.strings) fmt::print("string {} ({} bytes)\n", k, v.size());
      return 0;
    } else if (op == "set-int" && argc == 6) {
      c.integers[argv[4]] = std::stoull(argv[5]);
    } else if (op == "drop" && argc == 5) {
      c.arrays.erase(argv[4]), c.integers.erase(argv[4]), c.strings.erase(argv[4]);
    } else if (op == "set-entry" && argc == 7) {
      c.arrays.at(argv[4]).data()[std::stoull(argv[5])] = std::strtod(argv[6], nullptr);
    } else {
      fmt::print(stderr, "craft_checkpoint: bad arguments\n");
      return 2;
    }
    c.save(argv[2]);
  } catch (const std::exception& e) {
    fmt::print(stderr, "craft_checkpoint: {}\n", e.what());
    return 1;
  }
  return 0;
}
