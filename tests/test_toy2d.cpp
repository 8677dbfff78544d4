// The toy datasets' densities integrate to one and agree with their samples.
#include "datasets/toy2d.hpp"
#include "ebm/boltzmann.hpp"
#include "tests/helpers.hpp"

using namespace ebl;

TEST_CASE("every known toy density integrates to one over [-4 4]^2", "[toy2d]") {
  Domain<double> g = grid_2d<double>(-4, 4, 200, -4, 4, 200);
  for (const auto& name : toy2d::dataset_names()) {
    toy2d::Dataset d = toy2d::dataset(name);
    if (!d.log_density) continue;
    INFO(name);
    double mass = 0;
    for (std::size_t i = 0; i < g.size(); ++i)
      mass += std::exp(d.log_density(g.points(i, 0), g.points(i, 1)));
    mass *= std::exp(g.log_cell);
    // midpoint rule on a 0.04 grid: exact for the checkerboard, within 2e-3 for the others
    CHECK(mass == Approx(1.0).margin(2e-3));
  }
}

TEST_CASE("toy samples stay in the box and are where the density is", "[toy2d]") {
  for (const auto& name : toy2d::dataset_names()) {
    INFO(name);
    toy2d::Dataset d = toy2d::dataset(name);
    Rng rng(3);
    Array<double> x = toy2d::sample<double>(d, 2000, rng);
    CHECK(xt::amax(xt::abs(x))() < 3.5);
    if (!d.log_density) continue;
    // the mean log-density of samples (-NLL) must beat a uniform density over the box by far
    double nll = *toy2d::true_nll(d, x);
    CHECK(std::isfinite(nll));
    CHECK(nll < std::log(64.0) - 0.5);
  }
  Rng rng(4);
  Array<double> cb = toy2d::sample<double>(toy2d::checkerboard(), 500, rng);
  CHECK(*toy2d::true_nll(toy2d::checkerboard(), cb) ==
        Approx(std::log(8.0)));  // all on black squares
  CHECK_THROWS_WITH(toy2d::dataset("swissroll"),
                    Catch::Matchers::Contains("unknown dataset 'swissroll'"));
}
