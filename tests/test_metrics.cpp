// Sample-based metrics: MMD separates laws and does not separate a law from itself; calibration
// (ECE, MCE) against a calibrated predictor and a hand-computed case; AUROC against its exact
// values, ties and its null distribution.
#include "datasets/toy2d.hpp"
#include "metrics/classification.hpp"
#include "metrics/mmd.hpp"
#include "tests/helpers.hpp"

using namespace ebl;

TEST_CASE("MMD is near zero for one law and clearly positive for two", "[metrics]") {
  Rng rng(5);
  const std::vector<double> h = {0.1, 0.3, 1.0};
  Array<double> a = toy2d::sample<double>(toy2d::eight_gaussians(), 600, rng);
  Array<double> b = toy2d::sample<double>(toy2d::eight_gaussians(), 600, rng);
  Array<double> c = toy2d::sample<double>(toy2d::rings(), 600, rng);
  double same = mmd2_unbiased(a, b, h), diff = mmd2_unbiased(a, c, h);
  CHECK(std::abs(same) < 0.01);
  CHECK(diff > 0.1);
  CHECK(diff > 20 * std::abs(same));
}

TEST_CASE("ECE of a calibrated predictor is within its sampling error of 0", "[metrics]") {
  // confidence c ~ U(1/2, 1), correct with probability c: each bin's accuracy estimates its mean
  // confidence with sd sqrt(p(1 − p)/n_b), so E|acc − conf| ≤ that sd and ECE is below
  // Σ_b n_b/n · 3 sd_b with room to spare
  Rng rng(3);
  const std::size_t n = 20000;
  std::vector<double> conf(n);
  std::vector<char> ok(n);
  for (std::size_t i = 0; i < n; ++i) {
    conf[i] = rng.uniform(0.5, 1.0);
    ok[i] = rng.uniform() < conf[i];
  }
  const Calibration c = calibration(conf, ok);
  double bound = 0;
  for (const auto& b : c.bins)
    if (b.count)
      bound += double(b.count) / double(n) * 3 *
               std::sqrt(b.confidence * (1 - b.confidence) / double(b.count));
  INFO("ECE " << c.ece << ", bound " << bound);
  CHECK(c.ece < bound);
  CHECK(c.bins.size() == 15);
}

TEST_CASE("ECE and MCE of a known miscalibrated predictor, by hand", "[metrics]") {
  // confidences 0.9, 0.9, 0.9 (two right) in bin [13/15, 14/15) and 0.3 (wrong) in [4/15, 5/15):
  // ECE = 3/4 |2/3 − 0.9| + 1/4 |0 − 0.3| = 0.175 + 0.075 = 0.25, MCE = 0.3
  const std::vector<double> conf = {0.9, 0.9, 0.9, 0.3};
  const std::vector<char> ok = {1, 1, 0, 0};
  const Calibration c = calibration(conf, ok);
  CHECK(c.ece == Approx(0.25));
  CHECK(c.mce == Approx(0.3));
  CHECK(c.bins[13].count == 3);
  CHECK(c.bins[4].accuracy == 0.0);
  CHECK(calibration(std::vector<double>{1.0}, std::vector<char>{1}).bins[14].count == 1);
  CHECK_THROWS_WITH(calibration(std::vector<double>{1.5}, std::vector<char>{1}),
                    Catch::Contains("not in [0, 1]"));
}

TEST_CASE("AUROC: 1 for separated scores, 1/2 for identical laws, ties as Mann-Whitney",
          "[metrics]") {
  CHECK(auroc(std::vector<double>{3, 4, 5}, std::vector<double>{0, 1, 2}).auroc == 1.0);
  CHECK(auroc(std::vector<double>{0, 1}, std::vector<double>{3, 4}).auroc == 0.0);
  // in {1, 2, 2}, out {2, 3}: pairs won 0, ties 2 → (0 + 2 · ½) / 6
  CHECK(auroc(std::vector<double>{1, 2, 2}, std::vector<double>{2, 3}).auroc == Approx(1.0 / 6));
  Rng rng(4);
  std::vector<double> a(3000), b(2000);
  for (auto& v : a) v = rng.normal();
  for (auto& v : b) v = rng.normal();
  const Auroc r = auroc(a, b);
  INFO("AUROC " << r.auroc << " ± " << r.std_err);
  CHECK(std::abs(r.auroc - 0.5) < 4 * r.std_err);
  CHECK(r.std_err == Approx(std::sqrt((1.0 / 3000 + 1.0 / 2000) / 12)).epsilon(0.05));
}

TEST_CASE("a confidence lands in the calibration bin whose reported edges hold it", "[metrics]") {
  // 0.8999999999999999 · 10 rounds to 9: ⌊p B⌋ put it in [0.9, 1.0), which does not hold it
  const double p = std::nextafter(0.9, 0.0);
  const Calibration c = calibration(std::vector<double>{p, 0.9}, std::vector<char>{1, 0}, 10);
  CHECK(c.bins[8].count == 1);
  CHECK(c.bins[9].count == 1);
  for (const auto& b : c.bins)
    if (b.count > 0) CHECK(b.lo <= b.confidence);
  // every value of the form k / B and its neighbours, against the edges the bins report
  for (std::size_t bins : {std::size_t(7), std::size_t(10), std::size_t(15)})
    for (std::size_t k = 0; k <= bins; ++k)
      for (double v : {std::nextafter(double(k) / double(bins), -1.0), double(k) / double(bins),
                       std::nextafter(double(k) / double(bins), 2.0)}) {
        if (v < 0 || v > 1) continue;
        const Calibration one = calibration(std::vector<double>{v}, std::vector<char>{1}, bins);
        for (const auto& b : one.bins)
          if (b.count == 1) {
            INFO("v = " << v << ", " << bins << " bins");
            CHECK(b.lo <= v);
            CHECK((v < b.hi || b.hi == 1.0));
          }
      }
}
