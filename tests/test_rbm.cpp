// The RBM against enumeration: the free energy and its gradient, Gibbs sampling against the exact
// joint, exact log Z both ways, AIS against exact log Z, pseudo-likelihood against its
// definition, and training on bars-and-stripes towards the optimum -ln 14.
#include <algorithm>
#include <array>
#include <cmath>

#include "ebm/rbm.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;

namespace {
// An RBM with weights large enough that its distribution is far from uniform.
Rbm<double> random_rbm(std::size_t nv, std::size_t nh, std::uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  Rbm<double> m(nv, nh, rng, scale);
  for (auto& x : m.b.value) x = rng.normal(0, scale);
  for (auto& x : m.c.value) x = rng.normal(0, scale);
  return m;
}
// All 2^n binary vectors as rows.
Array<double> all_states(std::size_t n) {
  Array<double> a(Shape{std::size_t(1) << n, n});
  for (std::size_t s = 0; s < a.shape()[0]; ++s)
    for (std::size_t k = 0; k < n; ++k) a(s, k) = double((s >> k) & 1);
  return a;
}
// log Z by brute force over every (v, h)
double brute_log_z(const Rbm<double>& m) {
  Array<double> v = all_states(m.visible()), h = all_states(m.hidden());
  std::vector<double> t;
  for (std::size_t i = 0; i < v.shape()[0]; ++i)
    for (std::size_t j = 0; j < h.shape()[0]; ++j) t.push_back(-m.energy(&v(i, 0), &h(j, 0)));
  return detail::log_sum_exp(t);
}
}  // namespace

TEST_CASE("the free energy sums the hidden units out of exp(-E)", "[rbm]") {
  Rbm<double> m = random_rbm(4, 3, 1);
  Array<double> v = all_states(4), h = all_states(3);
  std::vector<double> f = rbm_free_energies(m, v);
  TD t;
  V ft = m.free_energy(t, t.constant(v));
  for (std::size_t i = 0; i < v.shape()[0]; ++i) {
    std::vector<double> terms;
    for (std::size_t j = 0; j < h.shape()[0]; ++j) terms.push_back(-m.energy(&v(i, 0), &h(j, 0)));
    CHECK(f[i] == Approx(-detail::log_sum_exp(terms)).epsilon(1e-12));
    CHECK(ft.value()(i) == Approx(f[i]).epsilon(1e-12));
  }
}

TEST_CASE("the free-energy gradient from the tape equals the closed form", "[rbm][gradcheck]") {
  Rbm<double> m = random_rbm(6, 4, 2, 0.5);
  Rng rng(3);
  Array<double> v_pos = rng.uniform_array<double>({5, 6}),
                v_neg = rng.uniform_array<double>({7, 6});
  sample_bernoulli(v_pos, rng);
  sample_bernoulli(v_neg, rng);
  TD t;
  V l = mean(m.free_energy(t, t.constant(v_pos))) - mean(m.free_energy(t, t.constant(v_neg)));
  auto tape = param_gradients<double>(l, m.parameters());
  auto closed = rbm_loglik_gradient(m, v_pos, v_neg);
  for (std::size_t k = 0; k < 3; ++k)
    for (std::size_t e = 0; e < tape[k].size(); ++e)
      CHECK(tape[k].data()[e] == Approx(-closed[k].data()[e]).margin(1e-12));
  expect_gradients([&m](TD& tt, In x) { return m.free_energy(tt, x[0]); }, {v_pos}, m.parameters());
}

TEST_CASE("exact log Z: over the hidden layer, over the visible layer and by brute force agree",
          "[rbm]") {
  Rbm<double> a = random_rbm(5, 3, 4), b = random_rbm(3, 5, 5);  // enumerates h, then v
  CHECK(rbm_exact_log_z(a) == Approx(brute_log_z(a)).epsilon(1e-12));
  CHECK(rbm_exact_log_z(b) == Approx(brute_log_z(b)).epsilon(1e-12));
  // and the model's probabilities of all visible states sum to one
  Array<double> v = all_states(5);
  double total = 0;
  for (double f : rbm_free_energies(a, v)) total += std::exp(-f - rbm_exact_log_z(a));
  CHECK(total == Approx(1.0).epsilon(1e-12));
}

namespace {
// Chi-square and total variation of joint (v, h) samples, one per row, against the exact p(v, h).
std::pair<double, double> joint_fit(const Rbm<double>& m, const Array<double>& v,
                                    const Array<double>& h) {
  const std::size_t nv = m.visible(), nh = m.hidden(), states = std::size_t(1) << (nv + nh),
                    chains = v.shape()[0];
  const double log_z = rbm_exact_log_z(m);
  std::vector<double> count(states, 0.0);
  for (std::size_t r = 0; r < chains; ++r) {
    std::size_t s = 0;
    for (std::size_t i = 0; i < nv; ++i) s |= std::size_t(v(r, i)) << i;
    for (std::size_t j = 0; j < nh; ++j) s |= std::size_t(h(r, j)) << (nv + j);
    ++count[s];
  }
  Array<double> vs = all_states(nv), hs = all_states(nh);
  double chi2 = 0, tv = 0;
  for (std::size_t s = 0; s < states; ++s) {
    const std::size_t vi = s & ((std::size_t(1) << nv) - 1), hi = s >> nv;
    double p = std::exp(-m.energy(&vs(vi, 0), &hs(hi, 0)) - log_z), expect = p * double(chains);
    chi2 += (count[s] - expect) * (count[s] - expect) / expect;
    tv += 0.5 * std::abs(count[s] / double(chains) - p);
  }
  return {chi2, tv};
}
}  // namespace

TEST_CASE("block Gibbs sampling of a tiny RBM matches the exact joint distribution",
          "[rbm][samplers]") {
  // 4 visible, 3 hidden: 128 joint states. 40000 independent chains, 60 sweeps each; the final
  // (v, h) counts against the exact p(v, h) by a chi-square test, 127 degrees of freedom.
  Rbm<double> m = random_rbm(4, 3, 6);
  Rng rng(7);
  Array<double> v = rng.uniform_array<double>({40000, 4}), h;
  sample_bernoulli(v, rng);
  block_gibbs(m, v, h, 60, rng);
  auto [chi2, tv] = joint_fit(m, v, h);
  INFO("chi2 " << chi2 << ", total variation " << tv);
  CHECK(chi2 < 181.99);  // the 0.999 quantile of chi-square with 127 degrees of freedom
  CHECK(tv < 0.03);
}

TEST_CASE("persistent chains carrying their hidden sample leave the model distribution invariant",
          "[rbm][samplers]") {
  // PCD steps with a zero learning rate are pure Gibbs sweeps over (v, h), where each step's h is
  // taken from the gradient's p(h | v⁻): after 60 steps the chains' joint states must follow the
  // exact p(v, h) (same chi-square test as above), for PCD-1 and PCD-3.
  for (int k : {1, 3}) {
    Rbm<double> m = random_rbm(4, 3, 6);
    SGD<double> opt(m.parameters(), {.lr = 0.0});
    Rng rng(17);
    GibbsChains<double> chains{.v = rng.uniform_array<double>({40000, 4}), .h = {}};
    sample_bernoulli(chains.v, rng);
    Array<double> data = rng.uniform_array<double>({5, 4});
    sample_bernoulli(data, rng);
    RbmWorkspace<double> ws;
    for (int step = 0; step < 60; ++step)
      rbm_train_step(m, opt, data, chains, {.k = k, .persistent = true}, rng, ws);
    auto [chi2, tv] = joint_fit(m, chains.v, chains.h);
    INFO("PCD-" << k << ": chi2 " << chi2 << ", total variation " << tv);
    CHECK(chi2 < 181.99);
    CHECK(tv < 0.03);
  }
}

TEST_CASE("Bernoulli draws have the requested means in float and in double", "[rbm][samplers]") {
  // 2^20 draws at each probability, an odd count so that the float path's unpaired last draw is
  // used; the sample mean within 5 standard errors of p.
  const std::size_t n = (std::size_t(1) << 20) + 1;
  for (double p : {0.0, 1e-3, 0.3, 0.5, 0.97, 1.0}) {
    Rng rng(23);
    Array<float> f(Shape{n}, float(p));
    Array<double> d(Shape{n}, p);
    sample_bernoulli(f, rng);
    sample_bernoulli(d, rng);
    const double se = std::sqrt(p * (1 - p) / double(n)), mf = xt::mean(f)(), md = xt::mean(d)();
    INFO("p " << p << ": float mean " << mf << ", double mean " << md << ", standard error " << se);
    CHECK(std::abs(mf - p) <= 5 * se + 1e-7);
    CHECK(std::abs(md - p) <= 5 * se);
    CHECK(std::all_of(f.begin(), f.end(), [](float x) { return x == 0.0f || x == 1.0f; }));
  }
}

TEST_CASE("AIS log Z agrees with the exact value within its error and within a few hundredths",
          "[rbm]") {
  for (std::uint64_t seed : {8, 9}) {
    Rbm<double> m = random_rbm(12, 10, seed, 0.6);
    const double exact = rbm_exact_log_z(m);
    Rng rng(seed + 100);
    Array<double> data = rng.uniform_array<double>({200, 12});
    sample_bernoulli(data, rng);
    AisResult ais = rbm_ais(m, base_rate_bias(data), 200, 2000, rng);
    INFO("seed " << seed << ": AIS " << ais.log_z << " ± " << ais.std_err << ", exact " << exact);
    CHECK(std::abs(ais.log_z - exact) < 3 * ais.std_err + 1e-3);
    CHECK(std::abs(ais.log_z - exact) < 0.05);
    CHECK(ais.std_err < 0.05);
  }
}

TEST_CASE("pseudo-likelihood is the sum of exact conditionals p(v_i | v_-i)", "[rbm]") {
  Rbm<double> m = random_rbm(5, 4, 10);
  Array<double> v = all_states(5);
  std::vector<double> f = rbm_free_energies(m, v);
  double want = 0;
  for (std::size_t s = 0; s < 32; ++s)
    for (std::size_t i = 0; i < 5; ++i) {
      std::size_t flipped = s ^ (std::size_t(1) << i);
      want += -f[s] - std::log(std::exp(-f[s]) + std::exp(-f[flipped]));
    }
  CHECK(rbm_pseudo_loglik(m, v) == Approx(want / 32).epsilon(1e-12));
}

TEST_CASE("on 3x3 bars-and-stripes a trained RBM approaches the optimum -ln 14", "[rbm]") {
  // The 14 patterns: each of the 8 row subsets as horizontal bars, each of the 8 column subsets
  // as vertical stripes, the empty and the full image counted once.
  std::vector<std::array<double, 9>> pats;
  for (int s = 0; s < 8; ++s) {
    std::array<double, 9> rowsp{}, colsp{};
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) {
        rowsp[r * 3 + c] = (s >> r) & 1;
        colsp[r * 3 + c] = (s >> c) & 1;
      }
    pats.push_back(rowsp);
    if (s != 0 && s != 7) pats.push_back(colsp);
  }
  REQUIRE(pats.size() == 14);
  Array<double> data(Shape{14, 9});
  for (std::size_t p = 0; p < 14; ++p)
    for (std::size_t k = 0; k < 9; ++k) data(p, k) = pats[p][k];

  Rng rng(11);
  Rbm<double> m(9, 16, rng, 0.1);
  SGD<double> opt(m.parameters(), {.lr = 0.05, .momentum = 0.5, .weight_decay = 1e-4});
  GibbsChains<double> chains{.v = rng.uniform_array<double>({100, 9}), .h = {}};
  sample_bernoulli(chains.v, rng);
  const double before = rbm_average_loglik(m, data, rbm_exact_log_z(m));
  RbmWorkspace<double> ws;
  const int steps = 20000;
  for (int step = 0; step < steps; ++step) {
    opt.options().lr = 0.05 * (1 - double(step) / steps);  // PCD needs a decaying rate to settle
    rbm_train_step(m, opt, data, chains, {.k = 1, .persistent = true}, rng, ws);
  }
  const double after = rbm_average_loglik(m, data, rbm_exact_log_z(m)), optimum = -std::log(14.0);
  INFO("average log-likelihood before " << before << ", after " << after << ", optimum "
                                        << optimum);
  CHECK(after <= optimum + 1e-9);  // no model can beat the data's own distribution
  CHECK(after > optimum - 0.3);
  CHECK(after > before + 3.0);
}

TEST_CASE("RBM training resumed from its saved state continues bit for bit", "[rbm][io]") {
  Array<double> data(Shape{40, 9});
  {
    Rng drng(71);
    for (auto& v : data) v = drng.bernoulli(0.3) ? 1.0 : 0.0;
  }
  for (bool persistent : {false, true}) {
    INFO("persistent " << persistent);
    const RbmTrainOptions o{.k = 2, .persistent = persistent};
    // one run of 10 steps; or 4 steps, saved to bytes, restored into fresh objects, 6 more
    auto run = [&](int steps, const Checkpoint* resume, Checkpoint* out) {
      Rng rng(72);
      Rbm<double> m(9, 4, rng, 0.1);
      SGD<double> opt(m.parameters(), {.lr = 0.1, .momentum = 0.5, .weight_decay = 1e-3});
      GibbsChains<double> chains{.v = rng.uniform_array<double>({10, 9}), .h = {}};
      sample_bernoulli(chains.v, rng);
      RbmWorkspace<double> ws;
      if (resume) rbm_restore_state(*resume, m, opt, chains, rng, "run/");
      Array<double> batch(Shape{10, 9});
      for (int s = 0; s < steps; ++s) {
        for (std::size_t r = 0; r < 10; ++r) std::copy_n(&data(rng.below(40), 0), 9, &batch(r, 0));
        rbm_train_step(m, opt, batch, chains, o, rng, ws);
      }
      rbm_save_state(*out, m, opt, chains, rng, "run/");
    };
    Checkpoint straight, half, resumed;
    run(10, nullptr, &straight);
    run(4, nullptr, &half);
    const Checkpoint loaded = Checkpoint::parse(half.bytes(), "half");
    run(6, &loaded, &resumed);
    REQUIRE(straight.arrays.size() == resumed.arrays.size());
    for (const auto& [name, a] : straight.arrays) {
      INFO(name);
      CHECK(same(a, resumed.arrays.at(name)));
    }
    CHECK(straight.integers == resumed.integers);
    CHECK(straight.integer("run/optim/steps") == 10);
  }
}

TEST_CASE("exact samples of a small RBM follow p(v) = exp(-F(v)) / Z", "[rbm]") {
  Rbm<double> m = random_rbm(4, 3, 31, 1.0);
  const double log_z = rbm_exact_log_z(m);
  Array<double> states = all_states(4);
  const std::vector<double> f = rbm_free_energies(m, states);
  Rng rng(32);
  const std::size_t n = 200000;
  Array<double> v = rbm_exact_samples(m, n, rng);
  std::vector<double> freq(16, 0.0);
  for (std::size_t r = 0; r < n; ++r) {
    std::size_t s = 0;
    for (std::size_t k = 0; k < 4; ++k) s |= std::size_t(v(r, k)) << k;
    freq[s] += 1.0 / double(n);
  }
  for (std::size_t s = 0; s < 16; ++s) {
    const double p = std::exp(-f[s] - log_z);
    INFO("state " << s << ": frequency " << freq[s] << ", exact " << p);
    CHECK(std::abs(freq[s] - p) < 5 * std::sqrt(p * (1 - p) / double(n)));
  }
}

TEST_CASE("AIS refuses base biases of the wrong size, no runs, no temperatures", "[rbm]") {
  Rng rng(1);
  Rbm<double> m(3, 2, rng, 0.5);
  const Array<double> good(Shape{3}, 0.0), bad(Shape{5}, 0.0);
  CHECK_THROWS_WITH(rbm_ais(m, bad, 10, 10, rng), Catch::Contains("base biases [5] for 3"));
  CHECK_THROWS_AS(rbm_ais(m, good, 0, 10, rng), std::invalid_argument);
  CHECK_THROWS_AS(rbm_ais(m, good, 10, 0, rng), std::invalid_argument);
  const Array<double> none = Array<double>::from_shape({0, 3}), one(Shape{1, 3}, 1.0);
  CHECK_THROWS_AS(rbm_reverse_ais(m, good, none, 10, rng), std::invalid_argument);
  CHECK_THROWS_AS(rbm_reverse_ais(m, bad, one, 10, rng), std::invalid_argument);
  CHECK(std::isfinite(rbm_ais(m, good, 1, 1, rng).log_z));
}

TEST_CASE("forward and reverse AIS bracket the exact log Z of small RBMs", "[rbm]") {
  // Per run, E[log w_forward] = log Z − log Z_A − KL(forward path ‖ backward path) and
  // E[log w_reverse] = log Z_A − log Z − KL(backward ‖ forward): the mean log-weights bound log Z
  // from below and from above (log_z_bound), by gaps that shrink as the schedule refines. With 3
  // temperatures the gaps are many standard errors wide; with 3000 the bracket closes to a few
  // hundredths and the log-mean estimates agree with the exact value.
  for (std::uint64_t seed : {33, 34}) {
    Rbm<double> m = random_rbm(16, 12, seed, 2.5);
    const double exact = rbm_exact_log_z(m);
    Rng rng(seed + 100);
    Array<double> samples = rbm_exact_samples(m, 1000, rng);
    const Array<double> base = base_rate_bias(samples);
    for (std::size_t temps : {std::size_t(3), std::size_t(3000)}) {
      AisResult fwd = rbm_ais(m, base, 1000, temps, rng);
      AisResult rev = rbm_reverse_ais(m, base, samples, temps, rng);
      INFO("seed " << seed << ", " << temps << " temperatures: bounds " << fwd.log_z_bound << " ± "
                   << fwd.bound_std_err << " <= exact " << exact << " <= " << rev.log_z_bound
                   << " ± " << rev.bound_std_err << "; log-mean estimates " << fwd.log_z << " ± "
                   << fwd.std_err << ", " << rev.log_z << " ± " << rev.std_err);
      if (temps == 3) {  // a real gap, on both sides
        CHECK(exact - fwd.log_z_bound > 3 * fwd.bound_std_err);
        CHECK(rev.log_z_bound - exact > 3 * rev.bound_std_err);
      } else {
        CHECK(fwd.log_z_bound < exact + 3 * fwd.bound_std_err);
        CHECK(rev.log_z_bound > exact - 3 * rev.bound_std_err);
        CHECK(rev.log_z_bound - fwd.log_z_bound < 0.05);
        CHECK(std::abs(fwd.log_z - exact) < 3 * fwd.std_err + 1e-3);
        CHECK(std::abs(rev.log_z - exact) < 3 * rev.std_err + 1e-3);
      }
    }
  }
  Rbm<double> m = random_rbm(5, 3, 35);
  Rng rng(36);
  CHECK_THROWS_WITH(
      rbm_reverse_ais(m, Array<double>(Shape{5}, 0.0), Array<double>(Shape{10, 4}, 0.0), 10, rng),
      Catch::Contains("start states [10,4] for 5 visible units"));
}

TEST_CASE("persistent parallel tempering samples a multimodal RBM exactly where Gibbs is stuck",
          "[rbm]") {
  // Strong positive weights make the all-off and all-on corners two modes separated by a wall
  // of low probability; 4000 chains, all started all-off, run 60 iterations. Parallel tempering
  // (β from 1 down to 0 in 8 levels) matches the exact p(v) state by state within 5 binomial
  // standard errors; plain Gibbs from the same start is still far from it (about half of the
  // all-on mode's mass has arrived).
  Rng init(41);
  Rbm<double> m(6, 3, init, 0.0);
  for (auto& w : m.W.value) w = 2.0;
  for (auto& b : m.b.value) b = -3.0;
  for (auto& c : m.c.value) c = -6.0;
  const double log_z = rbm_exact_log_z(m);
  const Array<double> states = all_states(6);
  const std::vector<double> f = rbm_free_energies(m, states);
  const std::size_t n = 4000;
  auto histogram = [&](const Array<double>& v) {
    std::vector<double> freq(64, 0.0);
    for (std::size_t r = 0; r < n; ++r) {
      std::size_t s = 0;
      for (std::size_t k = 0; k < 6; ++k) s |= std::size_t(v(r, k)) << k;
      freq[s] += 1.0 / double(n);
    }
    return freq;
  };
  std::vector<double> betas(8);
  for (std::size_t k = 0; k < 8; ++k) betas[k] = 1 - double(k) / 7;
  Rng rng(42);
  GibbsChains<double> pt{.v = Array<double>(Shape{n, 6}, 0.0), .h = {}};
  GibbsChains<double> plain{.v = Array<double>(Shape{n, 6}, 0.0), .h = {}};
  for (int it = 0; it < 60; ++it) tempered_gibbs(m, pt, betas, 1, rng);
  block_gibbs(m, plain.v, plain.h, 60, rng);
  const std::vector<double> fp = histogram(pt.v), fg = histogram(plain.v);
  const double p_on = std::exp(-f[63] - log_z);
  INFO("p(all on): exact " << p_on << ", tempering " << fp[63] << ", Gibbs " << fg[63]);
  REQUIRE(p_on > 0.2);  // the other mode holds real mass
  for (std::size_t s = 0; s < 64; ++s) {
    const double p = std::exp(-f[s] - log_z);
    INFO("state " << s << ": tempering " << fp[s] << ", exact " << p);
    CHECK(std::abs(fp[s] - p) < 5 * std::sqrt(p * (1 - p) / double(n)) + 1e-12);
  }
  CHECK(std::abs(fg[63] - p_on) > 20 * std::sqrt(p_on * (1 - p_on) / double(n)));
  for (std::size_t k = 0; k < 7; ++k) {
    INFO("swap rate " << k);
    CHECK(pt.swaps_proposed[k] == 60 * n);
    CHECK(pt.swaps_accepted[k] > 0);
  }
  CHECK_THROWS_WITH(tempered_gibbs(m, pt, {0.9, 0.5}, 1, rng),
                    Catch::Contains("start at beta = 1"));
}
