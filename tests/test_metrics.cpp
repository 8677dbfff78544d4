// Sample-based metrics: MMD separates laws and does not separate a law from itself.
#include "datasets/toy2d.hpp"
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
