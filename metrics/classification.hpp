// Measures of a probabilistic classifier beyond its accuracy:
//
//   calibration (Guo, Pleiss, Sun & Weinberger 2017): predictions grouped by their confidence
//   (the probability of the predicted class) into equal-width bins B_b of [0, 1];
//       ECE = Σ_b |B_b|/n · |acc(B_b) − conf(B_b)|,     MCE = max_b |acc(B_b) − conf(B_b)|
//   (non-empty bins; a confidence of exactly 1 falls in the last bin), and the bins themselves for
//   a reliability diagram;
//
//   AUROC of a score that should be higher in-distribution than out (Mann–Whitney): the
//   probability that a random in-distribution score exceeds a random out-of-distribution one,
//   ties counting one half, computed exactly from average ranks,
//       AUROC = (R_in − n_in (n_in + 1)/2) / (n_in n_out),
//   with Hanley & McNeil's (1982) standard error.
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "metrics/bins.hpp"

namespace ebl {

/// One reliability bin.
struct CalibrationBin {
  double lo = 0;          ///< the bin [lo, hi): low end
  double hi = 0;          ///< high end
  double confidence = 0;  ///< mean confidence of its predictions
  double accuracy = 0;    ///< fraction of them correct
  std::size_t count = 0;  ///< predictions in the bin
};

/// Calibration of a classifier's confidences.
struct Calibration {
  double ece = 0;                    ///< expected calibration error
  double mce = 0;                    ///< maximum calibration error
  std::vector<CalibrationBin> bins;  ///< the reliability bins
};

/// ECE, MCE and the reliability bins of predictions with confidences in [0, 1].
inline Calibration calibration(std::span<const double> confidence, std::span<const char> correct,
                               std::size_t bins = 15) {
  if (confidence.size() != correct.size() || confidence.empty() || bins == 0)
    throw std::invalid_argument(fmt::format("calibration: {} confidences, {} outcomes, {} bins",
                                            confidence.size(), correct.size(), bins));
  Calibration c;
  c.bins.resize(bins);
  for (std::size_t b = 0; b < bins; ++b) {
    c.bins[b].lo = double(b) / double(bins);
    c.bins[b].hi = double(b + 1) / double(bins);
  }
  for (std::size_t i = 0; i < confidence.size(); ++i) {
    const double p = confidence[i];
    if (!(p >= 0 && p <= 1))
      throw std::invalid_argument(fmt::format("calibration: confidence {} not in [0, 1]", p));
    // the bin whose reported [lo, hi) holds p (⌊p · bins⌋ alone can round across an edge)
    auto& bin = c.bins[equal_width_bin(p, bins,
                                       [bins](std::size_t k) { return double(k) / double(bins); })];
    bin.confidence += p;
    bin.accuracy += correct[i] ? 1.0 : 0.0;
    ++bin.count;
  }
  const double n = double(confidence.size());
  for (auto& bin : c.bins) {
    if (bin.count == 0) continue;
    bin.confidence /= double(bin.count);
    bin.accuracy /= double(bin.count);
    const double gap = std::abs(bin.accuracy - bin.confidence);
    c.ece += double(bin.count) / n * gap;
    c.mce = std::max(c.mce, gap);
  }
  return c;
}

/// An AUROC with its standard error.
struct Auroc {
  double auroc = 0;    ///< the area under the ROC curve (the Mann–Whitney statistic)
  double std_err = 0;  ///< Hanley & McNeil's standard error
};

/// AUROC of scores that should be higher in-distribution (`in`) than out (`out`).
inline Auroc auroc(std::span<const double> in, std::span<const double> out) {
  if (in.empty() || out.empty()) throw std::invalid_argument("auroc: needs scores of both kinds");
  std::vector<std::pair<double, bool>> all;
  all.reserve(in.size() + out.size());
  for (double s : in) all.push_back({s, true});
  for (double s : out) all.push_back({s, false});
  for (const auto& [s, is_in] : all)
    if (std::isnan(s)) throw std::invalid_argument("auroc: a score is NaN");
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double rank_sum_in = 0;
  for (std::size_t k = 0; k < all.size();) {
    std::size_t e = k;
    while (e + 1 < all.size() && all[e + 1].first == all[k].first) ++e;
    const double rank = (double(k) + double(e)) / 2 + 1;  // average rank of the tie, 1-based
    for (std::size_t j = k; j <= e; ++j)
      if (all[j].second) rank_sum_in += rank;
    k = e + 1;
  }
  const double n1 = double(in.size()), n2 = double(out.size());
  Auroc r;
  r.auroc = (rank_sum_in - n1 * (n1 + 1) / 2) / (n1 * n2);
  const double a = r.auroc, q1 = a / (2 - a), q2 = 2 * a * a / (1 + a);
  r.std_err = std::sqrt(
      std::max(0.0, (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2)));
  return r;
}

}  // namespace ebl
