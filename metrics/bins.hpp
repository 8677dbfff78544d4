// Which of `bins` equal bins of [0, 1] a value falls in, decided against the bin edges as they are
// reported, not by ⌊v · bins⌋ alone: near an edge the product rounds across it (0.7 · 100 = 70
// while numpy's edge 70 · 0.01 is 0.7000000000000001; 0.8999999999999999 · 10 rounds to 9).
#pragma once

#include <algorithm>
#include <cstddef>

namespace ebl {

/// The bin k of v ∈ [0, 1] with edge(k) <= v < edge(k + 1) (the last bin closed at 1), where
/// edge(k) is the caller's k-th edge (edge(0) = 0, edge(bins) = 1, increasing). This is how
/// np.histogram places values: a first guess ⌊v · bins⌋, then one step down or up against the
/// edges. Values outside [0, 1] go to the first or last bin.
template <class Edge>
std::size_t equal_width_bin(double v, std::size_t bins, Edge edge) {
  std::size_t k = std::min(bins - 1, std::size_t(std::max(0.0, v) * double(bins)));
  if (k > 0 && v < edge(k))
    --k;
  else if (k + 1 < bins && v >= edge(k + 1))
    ++k;
  return k;
}

/// np.histogram's edges for `bins` bins of [0, 1]: np.linspace(0, 1, bins + 1), k · (1 / bins).
inline double linspace_edge(std::size_t k, std::size_t bins) {
  return k == bins ? 1.0 : double(k) * (1.0 / double(bins));
}

}  // namespace ebl
