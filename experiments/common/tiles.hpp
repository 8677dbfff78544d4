// Pictures of images for the experiments: many images as tiles on one canvas, and the gnuplot
// script that draws such canvases in grey.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "experiments/common/run.hpp"

namespace ebl::xp {

// Images as tiles on one canvas, written as a CSV (x, y, value) over the full grid, row by row,
// as gnuplot's `with image` wants it: `count` images of side×side pixels, `cols` per row, image k
// taken from row k of `rows_of` [count, side*side], a one-pixel grey border between tiles.
template <class T>
void save_tiles(const fs::path& path, const Array<T>& rows_of, std::size_t side, std::size_t cols,
                bool normalise) {
  const std::size_t count = rows_of.shape()[0], tile_rows = (count + cols - 1) / cols;
  const std::size_t width = cols * (side + 1) + 1, height = tile_rows * (side + 1) + 1;
  std::vector<double> canvas(width * height, 0.5);
  for (std::size_t k = 0; k < count; ++k) {
    double lo = 0, hi = 1;
    if (normalise) {
      lo = *std::min_element(&rows_of(k, 0), &rows_of(k, 0) + side * side);
      hi = *std::max_element(&rows_of(k, 0), &rows_of(k, 0) + side * side);
      if (hi <= lo) hi = lo + 1;
    }
    const std::size_t x0 = (k % cols) * (side + 1) + 1, y0 = (k / cols) * (side + 1) + 1;
    for (std::size_t r = 0; r < side; ++r)
      for (std::size_t c = 0; c < side; ++c)
        canvas[(y0 + r) * width + x0 + c] = (rows_of(k, r * side + c) - lo) / (hi - lo);
  }
  Csv csv({"x", "y", "value"});
  for (std::size_t y = 0; y < height; ++y)
    for (std::size_t x = 0; x < width; ++x) csv.row({double(x), -double(y), canvas[y * width + x]});
  csv.save(path);
}

/// One PNG per canvas: files[k].csv (from save_tiles) drawn as files[k].png with titles[k].
inline std::string tiles_script(const std::vector<std::string>& files,
                                const std::vector<std::string>& titles) {
  std::string s =
      "set datafile separator ','\nset terminal pngcairo size 520,520 font ',10'\nset palette "
      "gray\nunset colorbox\n"
      "set size ratio -1\nunset xtics\nunset ytics\nunset border\n";
  for (std::size_t k = 0; k < files.size(); ++k)
    s += fmt::format(
        "set output '{0}.png.tmp'\nset title '{1}'\nplot '{0}.csv' using 1:2:3 with image "
        "notitle\n",
        files[k], titles[k]);
  return s;
}

}  // namespace ebl::xp
