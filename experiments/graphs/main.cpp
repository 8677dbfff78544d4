// graphs: graph energy-based models for molecules (QM9) and generic graphs (community-small),
// and property optimisation from a subset (Miglior, Simone, Podda & Bacciu 2025).
//
// A GraphEnergy (ebm/graph_ebm.hpp: spectrally normalised relational graph convolutions, SiLU,
// sum readout) is trained by contrastive divergence with GraphEBM's regulariser α(E⁺² + E⁻²),
// its negatives drawn by Langevin dynamics on the one-hot tensors with gradient clipping and
// clamping to [0, 1] (GraphEBM, Liu et al. 2021, DIG's defaults: step 30, noise 0.005, clip 0.01,
// α = 1, Adam β = (0, 0.999)). Generation: Langevin from uniform noise, then symmetrise and
// argmax (datasets/graphs.hpp), then RDKit (molecules/).
//
// Molecules: the generic model (QM9's training split, or a seeded subset of it: --qm9-train); for
// each target (QED in the top decile of those molecules; Crippen logP in its top decile) an expert
// trained only on the molecules meeting it, the product of experts generic + w·expert
// (ebm/compose.hpp's AND), and GraphEBM's goal-directed model (every molecule, weights 1 + e^y, y
// the property scaled to [0, 1]). Measured: validity without and after the valence correction,
// uniqueness, novelty, W1 to the test split of QED, logP, molecular weight and ring count, atom-
// and bond-type frequencies; and over the valid, unique, novel samples the property's mean, top 3
// and the fraction meeting the target.
// Community-small: GraphEBM's energy by CD, and a noise-conditional graph energy by multi-level
// DSM sampled by annealed Langevin with EDP-GNN's noise scale τ at the large levels
// (ebm/graph_score.hpp), on the 80 training graphs; each gives
// --community-draws draws of as many graphs as the 20 test graphs, scored by the published
// protocol (isolated nodes removed; MMD² of degree, clustering and orbit statistics, GraphRNN/GDSS
// kernels; mean ± sd over the draws) beside the training graphs, Erdős–Rényi graphs at their
// density and complete graphs; and GraphEBM's energy is measured on the training graphs' node sets
// (the data, ER edges, no edge, every edge), which says why its chains collapse.
//
// Output in a new folder runs/graphs/seed<seed>: config.json, results.{md,csv,json},
// molecules_<model>.png (RDKit drawings) and .csv (every sample: validity before correction, the
// graph as generated, the corrected SMILES), properties.csv + properties_<target>.png
// (histograms), community_<set>.txt (every scored set of graphs as edge lists, io/edge_lists.hpp;
// graph_scores recomputes the MMD²s from them), community.csv + community.png (pictures).
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <unordered_set>

#include "datasets/community.hpp"
#include "datasets/graphs.hpp"
#include "datasets/qm9.hpp"
#include "ebm/cd.hpp"
#include "ebm/compose.hpp"
#include "ebm/graph_ebm.hpp"
#include "ebm/graph_score.hpp"
#include "experiments/common/run.hpp"
#include "experiments/graphs/community.hpp"
#include "metrics/graph_stats.hpp"
#include "molecules/molecule.hpp"

using namespace ebl;
using namespace ebl::xp;
using T = float;

namespace {

struct Flags {
  std::string parts = "molecules,community", targets = "qed,logp";
  std::size_t qm9_train = 0, qm9_eval = 2000, qm9_limit = 0, samples = 1000;
  std::size_t hidden = 64, depth = 3, batch = 128, buffer = 10000;
  long steps = 1000, community_steps = 3000;  // community: about the score model's time
  std::string community_models = "graphebm,score";
  std::size_t community_draws = 10;
  long score_steps = 12000;
  std::size_t score_batch = 32, score_hidden = 64, score_depth = 3, score_langevin_steps = 300;
  std::string score_sigmas = "1.6,0.8,0.6,0.4,0.2,0.1";  // EDP-GNN's community-small levels
  double score_lr = 1e-3, score_eps = 1e-3, score_ema = 0.999, score_tau = 0.5,
         score_tau_sigma = 0.3;  // levels with σ ≥ score_tau_sigma sampled at τ, the rest at 1
  int langevin_steps = 60, gen_steps = 60, threads = 2;
  double lr = 1e-3, alpha = 1, c = 0, ld_step = 30, ld_noise = 0.005, grad_clip = 0.01;
  double restart = 0.05, poe_weight = 1, loss_bound = 1e4;
  std::string init = "noise", messages = "bonds";
  double adj_scale = 0.25, community_adj_scale = 0.1;
  std::uint64_t seed = 0, split_seed = 0;
  std::string out = "runs", data_dir;
  bool smoke = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Flags, parts, targets, qm9_train, qm9_eval, qm9_limit, samples,
                                   hidden, depth, batch, buffer, steps, community_steps,
                                   community_models, community_draws, score_steps, score_batch,
                                   score_hidden, score_depth, score_langevin_steps, score_sigmas,
                                   score_lr, score_eps, score_ema, score_tau, score_tau_sigma,
                                   langevin_steps, gen_steps, threads, lr, alpha, c, ld_step,
                                   ld_noise, grad_clip, restart, poe_weight, init, messages,
                                   adj_scale, community_adj_scale, loss_bound, seed, split_seed,
                                   out, data_dir, smoke)

// ---- models -------------------------------------------------------------------------------------

CdOptions cd_options(const Flags& f, int steps) {
  CdOptions o;
  o.init = parse_chain_init(f.init);
  o.alpha = f.alpha;
  o.buffer_size = f.buffer;
  o.restart_prob = f.restart;
  o.loss_bound = f.loss_bound;
  o.noise_lo = 0, o.noise_hi = 1;
  o.langevin.steps = steps;
  o.langevin.step_size = f.ld_step;
  // GraphEBM adds N(0, noise²) per step: as Langevin's √(2εT) ξ, T = noise² / 2ε
  o.langevin.temperature = f.ld_noise * f.ld_noise / (2 * f.ld_step);
  o.langevin.grad_clip = f.grad_clip;
  o.langevin.clamp = true, o.langevin.lo = 0, o.langevin.hi = 1;
  o.langevin.threads = f.threads;
  return o;
}

struct Model {
  std::string name;
  std::shared_ptr<GraphEnergy<T>> energy;
};

std::shared_ptr<GraphEnergy<T>> new_energy(const Flags& f, const GraphLayout& l, double adj_scale,
                                           std::uint64_t seed) {
  Rng init(seed);
  const GraphEnergyOptions o{.hidden = f.hidden,
                             .depth = f.depth,
                             .spectral_norm = true,
                             .none_channel_messages = f.messages == "all",
                             .adjacency_scale = adj_scale};
  return std::make_shared<GraphEnergy<T>>(l.nodes, l.node_types, l.edge_types, o, init);
}

Adam<T>::Options adam(const Flags& f) {
  return {.lr = f.lr, .beta1 = 0, .beta2 = 0.999};
}

// Minibatches of `batch` indices into [0, n): epochs of seeded permutations.
class Batches {
 public:
  Batches(std::size_t n, std::size_t batch, std::uint64_t seed)
      : n_(n), batch_(std::min(batch, n)), rng_(seed) {}
  const std::vector<std::size_t>& next() {
    cur_.clear();
    while (cur_.size() < batch_) {
      if (pos_ == perm_.size()) perm_ = rng_.permutation(n_), pos_ = 0;
      cur_.push_back(perm_[pos_++]);
    }
    return cur_;
  }
  Rng& rng() { return rng_; }

 private:
  std::size_t n_, batch_;
  Rng rng_;
  std::vector<std::size_t> perm_, cur_;
  std::size_t pos_ = 0;
};

// Trains e on graphs[idx] for `steps` steps (one power iteration each): CD with GraphEBM's loss,
// or, given labels y01 (one per idx, in [0, 1]), the goal-directed loss with weights 1 + e^y.
void train(GraphEnergy<T>& e, const Flags& f, const std::vector<TypedGraph>& graphs,
           const std::vector<std::size_t>& idx, const std::vector<double>& y01, long steps,
           std::uint64_t seed, Progress& bar, long& done, const std::string& what) {
  const GraphLayout l = layout_of(graphs[0]);
  Adam<T> opt(e.parameters(), adam(f));
  const CdOptions o = cd_options(f, f.langevin_steps);
  std::optional<ContrastiveDivergence<T>> cd;
  std::optional<GoalDirectedTrainer<T>> goal;
  if (y01.empty())
    cd.emplace(e, opt, o, seed, l.dim());
  else
    goal.emplace(e, opt, o, seed, l.dim());
  Batches batches(idx.size(), f.batch, seed + 1);
  std::vector<std::size_t> rows;
  Array<T> w;
  for (long s = 0; s < steps; ++s) {
    const auto& b = batches.next();
    rows.clear();
    for (std::size_t k : b) rows.push_back(idx[k]);
    e.update_spectral_norm();
    const Array<T> x = graphs_to_rows<T>(graphs, rows, l, f.c, batches.rng());
    std::string info;
    if (cd) {
      const CdStepStats st = cd->step(x);
      info = fmt::format("{} E+ {:.3f} E- {:.3f}", what, st.e_pos, st.e_neg);
    } else {
      w.resize({b.size()});
      for (std::size_t k = 0; k < b.size(); ++k) w(k) = T(1 + std::exp(y01[b[k]]));
      info = fmt::format("{} loss {:.3f}", what, goal->step(x, w));
    }
    bar.update(++done, info);
  }
}

// n graphs generated by Langevin from uniform noise on [0, 1], decoded.
std::vector<TypedGraph> generate(Energy<T>& e, const Flags& f, const GraphLayout& l, std::size_t n,
                                 std::uint64_t seed) {
  LangevinOptions lo = cd_options(f, f.gen_steps).langevin;
  Langevin<T> sampler([&e](Tape<T>& t, Var<T> x) { return e(t, x); }, lo);
  Rng rng(seed);
  Array<T> x = rng.uniform_array<T>(Shape{n, l.dim()}, 0, 1);
  {
    std::optional<BlasSingleThreaded> one;
    if (f.threads > 1) one.emplace();
    sampler.run(x, rng);
  }
  std::vector<TypedGraph> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(unpack_graph(x.data() + i * l.dim(), l));
  return out;
}

// --score-sigmas: positive, finite, strictly decreasing numbers, or one line naming the flag.
std::vector<double> parse_sigmas(const std::string& list) {
  std::vector<double> v;
  for (const std::string& item : parse_list("--score-sigmas", list)) {
    double x = NAN;
    std::size_t used = 0;
    try {
      x = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || !std::isfinite(x) || !(x > 0) || x > 1e6)
      throw FlagError(
          fmt::format("--score-sigmas: '{}' is not a noise level (a number in (0, 1e6])", item));
    if (!v.empty() && !(x < v.back()))
      throw FlagError(
          fmt::format("--score-sigmas: the levels must decrease ({} after {})", x, v.back()));
    v.push_back(x);
  }
  return v;
}

// The score-based generator: the noise-conditional graph energy (ebm/graph_score.hpp) trained by
// multi-level DSM on the training graphs, then `count` graphs by annealed Langevin from the
// parameters' moving average, their node counts drawn from the training graphs'.
std::vector<TypedGraph> train_score_model(const Flags& f, const std::vector<TypedGraph>& graphs,
                                          const std::vector<std::size_t>& counts,
                                          std::size_t count) {
  Rng init(f.seed + 800);
  const GraphScoreOptions o{
      .hidden = f.score_hidden, .depth = f.score_depth, .sigmas = parse_sigmas(f.score_sigmas)};
  NoiseConditionalGraphEnergy<T> e(graphs[0].n, o, init);
  Adam<T> opt(e.parameters(), {.lr = f.score_lr});
  Batches batches(graphs.size(), f.score_batch, f.seed + 801);
  const std::vector<Parameter<T>*> params = e.parameters();
  Progress bar("graphs: community-small, score model", f.score_steps);
  double avg = 0;
  // the exponential moving average of the parameters, which sampling uses
  std::vector<Array<T>> ema;
  for (auto* p : params) ema.push_back(p->value);
  Tape<T> t;
  for (long s = 0; s < f.score_steps; ++s) {
    const PairRows<T> x = graphs_to_pairs<T>(graphs, batches.next());
    t.clear();
    Var<T> l = graph_dsm_loss(e, t, x.u, x.masks, batches.rng());
    const double loss = double(l.item());
    if (!std::isfinite(loss))
      throw DivergenceError(fmt::format("score model: non-finite DSM loss at step {}", s + 1));
    opt.zero_grad();
    t.backward(l, {}, params);
    opt.step();
    for (std::size_t k = 0; k < params.size(); ++k) {
      T* a = ema[k].data();
      const T* v = params[k]->value.data();
      for (std::size_t z = 0; z < ema[k].size(); ++z)
        a[z] = T(f.score_ema * double(a[z]) + (1 - f.score_ema) * double(v[z]));
    }
    avg = s == 0 ? loss : 0.99 * avg + 0.01 * loss;
    if (s % 50 == 49 || s + 1 == f.score_steps)
      bar.update(s + 1, fmt::format("DSM loss {:.2f}", avg));
  }
  for (std::size_t k = 0; k < params.size(); ++k) params[k]->value = ema[k];
  Rng rng(f.seed + 802);
  std::vector<std::size_t> n(count);
  for (auto& k : n) k = counts[rng.below(counts.size())];
  // τ at the largest levels, which settle the graph's shape (its communities); τ = 1, the
  // model's own law, at the small ones, which settle single edges
  std::vector<double> tau;
  for (double sigma : o.sigmas) tau.push_back(sigma >= f.score_tau_sigma ? f.score_tau : 1.0);
  const AnnealedLangevinOptions ao{.epsilon = f.score_eps,
                                   .steps = f.score_langevin_steps,
                                   .denoise = true,
                                   .noise_scales = tau};
  return pairs_to_graphs(sample_graph_pairs(e, n, ao, rng), n, graphs[0].n);
}

// ---- statistics ---------------------------------------------------------------------------------

double quantile(std::vector<double> v, double q) {
  if (v.empty()) throw std::invalid_argument("quantile of no values");
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const auto lo = std::size_t(pos);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
}

std::string fmt3(double v) {
  return std::isfinite(v) ? fmt::format("{:.3f}", v) : "–";
}

// atom-type (C, N, O, F) and bond-type (single, double, triple) frequencies of molecules' graphs
std::vector<double> type_frequencies(const std::vector<mol::MolGraph>& gs) {
  std::vector<double> atoms(4, 0), bonds(3, 0);
  for (const auto& g : gs) {
    for (std::size_t i = 0; i < g.n; ++i)
      if (g.has_node(i)) atoms[std::size_t(g.nodes[i])] += 1;
    for (std::size_t i = 0; i < g.n; ++i)
      for (std::size_t j = i + 1; j < g.n; ++j)
        if (g.has_node(i) && g.has_node(j) && g.has_edge(i, j))
          bonds[std::size_t(g.edge(i, j))] += 1;
  }
  auto norm = [](std::vector<double>& v) {
    const double s = std::accumulate(v.begin(), v.end(), 0.0);
    for (double& x : v) x = s > 0 ? x / s : 0;
  };
  norm(atoms), norm(bonds);
  atoms.insert(atoms.end(), bonds.begin(), bonds.end());
  return atoms;
}

// ---- molecules ----------------------------------------------------------------------------------

struct Molecules {
  std::vector<mol::MolGraph> graphs;          // every encoded molecule of the file (train and test)
  std::vector<std::string> smiles;            // their canonical SMILES
  std::vector<std::size_t> train, test;       // indices into graphs
  std::unordered_set<std::string> train_set;  // canonical SMILES of the whole training split
  std::map<std::string, std::size_t> skipped;
  std::size_t read = 0;
};

Molecules load_molecules(const Flags& f) {
  std::vector<std::string> all = load_qm9_smiles(f.data_dir);
  if (f.qm9_limit > 0 && f.qm9_limit < all.size()) all.resize(f.qm9_limit);
  Molecules m;
  m.read = all.size();
  Progress bar("graphs: reading QM9 with RDKit", long(all.size()));
  for (std::size_t i = 0; i < all.size(); ++i) {
    mol::Encoded e = mol::encode_smiles(all[i], 9);
    if (e.skip != mol::Skip::None) {
      m.skipped[mol::skip_name(e.skip)] += 1;
    } else {
      m.smiles.push_back(std::move(e.canonical));
      m.graphs.push_back(std::move(e.graph));
    }
    if (i % 1000 == 999 || i + 1 == all.size()) bar.update(long(i + 1));
  }
  Split s = seeded_split(m.graphs.size(), 0.1, f.split_seed);
  m.train = std::move(s.train), m.test = std::move(s.test);
  for (std::size_t i : m.train) m.train_set.insert(m.smiles[i]);
  return m;
}

struct Target {
  std::string name;  // "qed" or "logp"
  double threshold = 0;
  static double of(const mol::Properties& p, const std::string& name) {
    return name == "qed" ? p.qed : p.logp;
  }
};

struct Sampled {
  std::string model;
  std::vector<mol::Decoded> decoded;
  mol::GenerationMetrics metrics;
  std::vector<mol::Properties> props;  // of the corrected molecules
  std::vector<std::string> smiles;     // the corrected molecules
  std::vector<mol::MolGraph> graphs;   // of the corrected molecules (for type frequencies)
  double atoms = 0, fragments = 0;     // per generated graph as decoded, before any correction
};

Sampled evaluate_samples(const std::string& model, const std::vector<TypedGraph>& gs,
                         const Molecules& m) {
  Sampled s;
  s.model = model;
  for (const auto& g : gs) {
    s.decoded.push_back(mol::decode(g));
    s.atoms += double(g.node_count()) / double(gs.size());
    s.fragments += double(connected_components(adjacency_lists(g))) / double(gs.size());
  }
  s.metrics = mol::generation_metrics(s.decoded, m.train_set);
  for (const auto& d : s.decoded)
    if (!d.corrected.empty()) {
      auto p = mol::properties(d.corrected);
      mol::Encoded e = mol::encode_smiles(d.corrected, 9);
      if (!p) continue;
      s.props.push_back(*p);
      s.smiles.push_back(d.corrected);
      if (e.skip == mol::Skip::None) s.graphs.push_back(e.graph);
    }
  return s;
}

// ---- community-small: pictures -------------------------------------------------------------------

// edges of graphs laid out on a circle, panel k at x offset 3k (gnuplot draws the segments)
void community_csv(Csv& csv, const std::vector<TypedGraph>& gs, double row) {
  for (std::size_t k = 0; k < gs.size(); ++k) {
    const auto adj = adjacency_lists(gs[k]);
    const double n = double(adj.size());
    auto pos = [&](std::size_t v) {
      const double a = 2 * 3.14159265358979 * double(v) / std::max(1.0, n);
      return std::pair{3.0 * double(k) + std::cos(a), row + std::sin(a)};
    };
    for (std::size_t v = 0; v < adj.size(); ++v) {
      auto [x, y] = pos(v);
      csv.row({x, y, 0.0, 0.0, 1.0});  // node
      for (int u : adj[v])
        if (std::size_t(u) > v) {
          auto [x2, y2] = pos(std::size_t(u));
          csv.row({x, y, x2 - x, y2 - y, 0.0});  // edge
        }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "graphs: graph EBMs (GraphEBM) on QM9 molecules and community-small graphs, and "
      "property optimisation by a product of experts (Miglior et al. 2025)",
      "graphs"};
  Flags f;
  app.add_option("--parts", f.parts, "comma-separated: molecules, community")
      ->capture_default_str();
  app.add_option("--targets", f.targets,
                 "property targets, comma-separated: qed, logp (none: the generic model only)")
      ->capture_default_str();
  app.add_option("--qm9-train", f.qm9_train,
                 "training molecules: a seeded subset of the split (0: the whole split)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  app.add_option("--qm9-eval", f.qm9_eval, "test molecules the distributions are compared with")
      ->check(CLI::Range(16, 1 << 24))
      ->capture_default_str();
  app.add_option("--qm9-limit", f.qm9_limit, "read only the first molecules of QM9 (0: all)")
      ->capture_default_str();
  app.add_option("--samples", f.samples, "molecules generated per model")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--hidden", f.hidden, "channels of the relational layers (GraphEBM: 64)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--depth", f.depth, "relational layers (GraphEBM: 3)")
      ->check(CLI::Range(1, 32))
      ->capture_default_str();
  app.add_option("--batch", f.batch, "graphs (and negatives) per step (GraphEBM: 128)")
      ->check(CLI::Range(2, 1 << 16))
      ->capture_default_str();
  app.add_option("--buffer", f.buffer, "replay buffer size (--init persistent)")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app.add_option("--steps", f.steps, "training steps of each molecule model")
      ->check(CLI::Range(1L, 100000000L))
      ->capture_default_str();
  app.add_option("--community-steps", f.community_steps,
                 "training steps of GraphEBM's model on community-small")
      ->check(CLI::Range(1L, 100000000L))
      ->capture_default_str();
  app.add_option("--community-models", f.community_models,
                 "community-small generators, comma-separated: graphebm (GraphEBM's energy by "
                 "CD), score (the noise-conditional energy by DSM, annealed Langevin)")
      ->capture_default_str();
  app.add_option("--community-draws", f.community_draws,
                 "draws of as many generated graphs as test graphs, each scored apart")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--score-steps", f.score_steps, "DSM training steps of the score model")
      ->check(CLI::Range(1L, 100000000L))
      ->capture_default_str();
  app.add_option("--score-batch", f.score_batch, "graphs per DSM step")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app.add_option("--score-hidden", f.score_hidden, "channels of the score model's layers")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--score-depth", f.score_depth, "relational layers of the score model")
      ->check(CLI::Range(1, 32))
      ->capture_default_str();
  app.add_option("--score-sigmas", f.score_sigmas,
                 "the noise levels, comma-separated, decreasing (EDP-GNN's for community-small)")
      ->capture_default_str();
  app.add_option("--score-lr", f.score_lr, "Adam's learning rate for the score model")
      ->check(CLI::Range(1e-8, 1.0))
      ->capture_default_str();
  app.add_option("--score-ema", f.score_ema,
                 "decay of the parameters' moving average sampled from (Song & Ermon 2020; 0: "
                 "the last parameters)")
      ->check(CLI::Range(0.0, 0.999999))
      ->capture_default_str();
  app.add_option("--score-eps", f.score_eps,
                 "annealed Langevin's step at the smallest level (ε; level i: ε σ_i² / σ_min²)")
      ->check(CLI::Range(1e-9, 1.0))
      ->capture_default_str();
  app.add_option("--score-langevin-steps", f.score_langevin_steps,
                 "annealed Langevin steps per noise level")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--score-tau", f.score_tau,
                 "annealed Langevin's noise scale τ at the largest levels (1: Song & Ermon; "
                 "EDP-GNN: 0.5)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--score-tau-sigma", f.score_tau_sigma,
                 "the noise levels σ at or above this are sampled at τ, the others at τ = 1")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--langevin-steps", f.langevin_steps, "Langevin steps per training step")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--gen-steps", f.gen_steps, "Langevin steps from noise to generate")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--threads", f.threads, "threads for the chains")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--lr", f.lr, "Adam's learning rate (GraphEBM: 1e-4 for 20 epochs)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--alpha", f.alpha, "weight of the regulariser α(E+² + E-²) (GraphEBM: 1)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--c", f.c, "dequantisation: uniform noise of scale c on the data (DIG: 0)")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  app.add_option("--ld-step", f.ld_step, "Langevin step size (GraphEBM: 30)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--ld-noise", f.ld_noise, "Langevin noise sd per step (GraphEBM: 0.005)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--grad-clip", f.grad_clip, "clip of each gradient component (GraphEBM: 0.01)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--init", f.init, "training chains: persistent (replay buffer) or noise")
      ->check(CLI::IsMember({"persistent", "noise"}))
      ->capture_default_str();
  app.add_option("--messages", f.messages,
                 "channels of A messages pass along: all (GraphEBM: \"no edge\" included) or bonds")
      ->check(CLI::IsMember({"all", "bonds"}))
      ->capture_default_str();
  app.add_option("--adj-scale", f.adj_scale,
                 "molecules: A is scaled by this in the energy (0: 1/nodes, GraphEBM's)")
      ->check(CLI::Range(0.0, 1e3))
      ->capture_default_str();
  app.add_option("--community-adj-scale", f.community_adj_scale,
                 "community graphs: A is scaled by this in the energy (0: 1/nodes)")
      ->check(CLI::Range(0.0, 1e3))
      ->capture_default_str();
  app.add_option("--loss-bound", f.loss_bound, "divergence guard: |loss| beyond this stops the run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--restart", f.restart, "chance a buffer chain restarts from noise")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--poe-weight", f.poe_weight, "w in the product of experts generic + w·expert")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--seed", f.seed, "seed of the models, batches and chains")->capture_default_str();
  app.add_option("--split-seed", f.split_seed, "seed of QM9's train/test split")
      ->capture_default_str();
  app.add_option("--out", f.out, "base folder of runs")->capture_default_str();
  app.add_option("--data-dir", f.data_dir, "where qm9.csv.gz is (default: the library's data)")
      ->check(CLI::ExistingDirectory);
  app.add_flag("--smoke", f.smoke, "a tiny run (CTest)");
  if (auto rc = parse_flags(app, argc, argv)) return *rc;
  if (f.smoke)
    SmokeSizes{app}("--qm9-limit", f.qm9_limit, 3000)("--qm9-train", f.qm9_train, 400)(
        "--qm9-eval", f.qm9_eval, 100)("--samples", f.samples, 40)("--hidden", f.hidden, 8)(
        "--depth", f.depth, 2)("--batch", f.batch, 16)("--buffer", f.buffer, 64)(
        "--steps", f.steps, 3)("--community-steps", f.community_steps, 3)(
        "--community-draws", f.community_draws, 2)("--score-steps", f.score_steps, 3)(
        "--score-batch", f.score_batch, 8)("--score-hidden", f.score_hidden, 8)(
        "--score-depth", f.score_depth, 2)("--score-langevin-steps", f.score_langevin_steps, 3)(
        "--langevin-steps", f.langevin_steps, 2)("--gen-steps", f.gen_steps, 3);
  try {
    // every input is accepted (the molecules read and encoded) before the run folder is made
    bool do_mol = false, do_comm = false;
    std::vector<std::string> target_names;
    const std::vector<std::string> targets_listed = parse_list("--targets", f.targets);
    for (const std::string& t : targets_listed)
      if (t == "qed" || t == "logp")
        target_names.push_back(t);
      else if (t != "none")
        throw FlagError(
            fmt::format("--targets: unknown target '{}' (expected qed, logp, none)", t));
      else if (targets_listed.size() > 1)
        throw FlagError("--targets: 'none' stands alone");
    for (const std::string& p : parse_list("--parts", f.parts)) {
      if (p == "molecules")
        do_mol = true;
      else if (p == "community")
        do_comm = true;
      else
        throw FlagError(
            fmt::format("--parts: unknown part '{}' (expected molecules, community)", p));
    }
    for (const std::string& m : parse_list("--community-models", f.community_models))
      if (m != "graphebm" && m != "score")
        throw FlagError(
            fmt::format("--community-models: unknown model '{}' (expected graphebm, score)", m));
    const std::vector<double> score_sigmas = parse_sigmas(f.score_sigmas);
    if (f.qm9_train > 0 && f.qm9_train < 16)
      throw FlagError(fmt::format(
          "--qm9-train: {} molecules (at least 16, or 0 for the whole split)", f.qm9_train));
    {  // the largest arrays at once: the replay buffer and the batches through the R-GCN
      const double row = 9 * 5 + 9 * 9 * 4;  // a QM9 graph's one-hot X and A (community: 20x20)
      require_fits_memory(8.0 * row * double(f.buffer + f.samples + 20 * f.community_draws) +
                              4.0 * 8 * double(f.batch) * 20 * double(f.hidden) * double(f.depth),
                          "--buffer, --samples, --batch, --hidden and --depth");
    }
    std::optional<Molecules> loaded;
    if (do_mol) {
      loaded = load_molecules(f);
      if (loaded->train.empty() || loaded->test.empty())
        throw IoError(fmt::format(
            "QM9: {} of the {} SMILES read encode as molecules, too few for a train/test split",
            loaded->graphs.size(), loaded->read));
    }
    const nlohmann::json config = f;
    const fs::path dir = make_run_dir(f.out, "graphs", fmt::format("seed{}", f.seed));
    write_json(dir / "config.json", config);
    fmt::print("graphs -> {}\n{}\n", dir.string(), config.dump());
    json results = json::object();
    std::string md = "# Graph EBMs\n\n";
    Csv csv({"part", "model", "metric", "value"});
    auto record = [&](const std::string& part, const std::string& model, const std::string& metric,
                      double v) {
      csv.row({part, model, metric}, {v});
      results[part][model][metric] = v;
    };
    const auto t0 = std::chrono::steady_clock::now();

    if (do_mol) {
      Molecules& m = *loaded;
      // the training subset and the evaluation set
      Rng pick(f.seed + 7);
      std::vector<std::size_t> sub = m.train, eval = m.test;
      {
        auto p = pick.permutation(sub.size());
        std::vector<std::size_t> s2;
        const std::size_t keep = f.qm9_train == 0 ? sub.size() : std::min(f.qm9_train, sub.size());
        for (std::size_t k = 0; k < keep; ++k) s2.push_back(sub[p[k]]);
        sub = s2;
        auto q = pick.permutation(eval.size());
        std::vector<std::size_t> e2;
        for (std::size_t k = 0; k < std::min(f.qm9_eval, eval.size()); ++k)
          e2.push_back(eval[q[k]]);
        eval = e2;
      }
      std::vector<mol::Properties> sub_props, eval_props;
      for (std::size_t i : sub) sub_props.push_back(*mol::properties(m.smiles[i]));
      for (std::size_t i : eval) eval_props.push_back(*mol::properties(m.smiles[i]));
      std::vector<mol::MolGraph> eval_graphs;
      for (std::size_t i : eval) eval_graphs.push_back(m.graphs[i]);

      md += fmt::format(
          "## Molecules (QM9)\n\nRead {} SMILES; encoded {} (kekulized, ≤ 9 heavy atoms among C, "
          "N, O, F); skipped {}",
          m.read, m.graphs.size(), m.read - m.graphs.size());
      for (const auto& [why, n] : m.skipped) md += fmt::format(", {} for {}", n, why);
      md += fmt::format(
          ". Split (seed {}): {} train, {} test. Models trained on {} for {} steps of {} each "
          "({:.1f} epochs; the reference: 20 epochs); distributions compared with {} test "
          "molecules; {} molecules generated per model.\n\n",
          f.split_seed, m.train.size(), m.test.size(),
          sub.size() == m.train.size()
              ? std::string("the whole training split")
              : fmt::format("a seeded subset of {} training molecules", sub.size()),
          f.steps, f.batch, double(f.steps * long(f.batch)) / double(sub.size()), eval.size(),
          f.samples);
      record("molecules", "data", "encoded", double(m.graphs.size()));
      record("molecules", "data", "skipped", double(m.read - m.graphs.size()));

      const GraphLayout l = mol::molecule_layout(9);
      std::vector<Target> targets;
      for (const std::string& name : target_names) {
        std::vector<double> v;
        for (const auto& p : sub_props) v.push_back(Target::of(p, name));
        targets.push_back({name, quantile(v, 0.9)});
      }
      // training indices of each expert, and the goal-directed labels scaled to [0, 1]
      std::map<std::string, std::vector<std::size_t>> expert_idx;
      std::map<std::string, std::vector<double>> y01;
      for (const auto& tg : targets) {
        double lo = 1e300, hi = -1e300;
        for (const auto& p : sub_props)
          lo = std::min(lo, Target::of(p, tg.name)), hi = std::max(hi, Target::of(p, tg.name));
        for (std::size_t k = 0; k < sub.size(); ++k) {
          const double v = Target::of(sub_props[k], tg.name);
          if (v >= tg.threshold) expert_idx[tg.name].push_back(sub[k]);
          y01[tg.name].push_back(hi > lo ? (v - lo) / (hi - lo) : 0);
        }
      }
      const long total = long(1 + 2 * targets.size()) * f.steps;
      Progress bar("graphs: training", total);
      long done = 0;
      std::map<std::string, std::shared_ptr<GraphEnergy<T>>> models;
      models["generic"] = new_energy(f, l, f.adj_scale, f.seed + 100);
      train(*models["generic"], f, m.graphs, sub, {}, f.steps, f.seed + 200, bar, done, "generic");
      std::uint64_t k = 0;
      for (const auto& tg : targets) {
        ++k;
        models["expert-" + tg.name] = new_energy(f, l, f.adj_scale, f.seed + 100 + 10 * k);
        train(*models["expert-" + tg.name], f, m.graphs, expert_idx[tg.name], {}, f.steps,
              f.seed + 200 + 10 * k, bar, done, "expert " + tg.name);
        models["goal-" + tg.name] = new_energy(f, l, f.adj_scale, f.seed + 105 + 10 * k);
        train(*models["goal-" + tg.name], f, m.graphs, sub, y01[tg.name], f.steps,
              f.seed + 205 + 10 * k, bar, done, "goal " + tg.name);
      }

      // generation: every trained model and each product of experts
      std::vector<std::pair<std::string, EnergyPtr<T>>> samplers;
      samplers.push_back({"generic", borrow<T>(*models["generic"])});
      for (const auto& tg : targets)
        for (const std::string kind : {"expert-", "goal-"})
          samplers.push_back({kind + tg.name, borrow<T>(*models[kind + tg.name])});
      for (const auto& tg : targets)
        samplers.push_back({"poe-" + tg.name,
                            std::make_shared<AndEnergy<T>>(
                                std::vector<EnergyPtr<T>>{borrow<T>(*models["generic"]),
                                                          borrow<T>(*models["expert-" + tg.name])},
                                std::vector<T>{T(1), T(f.poe_weight)})});
      std::map<std::string, Sampled> sampled;
      Progress gen_bar("graphs: generating", long(samplers.size()));
      long gen_done = 0;
      for (std::size_t s = 0; s < samplers.size(); ++s) {
        const auto& [name, e] = samplers[s];
        sampled[name] = evaluate_samples(name, generate(*e, f, l, f.samples, f.seed + 300 + s), m);
        // what was generated, for anyone's tools: per sample its validity before correction, the
        // graph as generated (unsanitised SMILES) and after MoFlow's correction
        std::string text = "index,valid_without_correction,smiles_as_generated,smiles_corrected\n";
        for (std::size_t i = 0; i < sampled[name].decoded.size(); ++i) {
          const mol::Decoded& dd = sampled[name].decoded[i];
          text += fmt::format("{},{},{},{}\n", i, dd.valid ? 1 : 0, dd.raw, dd.corrected);
        }
        write_file_atomic(dir / fmt::format("molecules_{}.csv", name), text);
        gen_bar.update(++gen_done, name);
      }

      // generation table
      md +=
          "### Generation\n\n| model | atoms | fragments | valid w/o corr. | valid | unique | "
          "novel | W1 QED | W1 logP | W1 MW | W1 rings | C / N / O / F | single / double / "
          "triple |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
      auto col = [](const std::vector<mol::Properties>& ps, auto get) {
        std::vector<double> v;
        for (const auto& p : ps) v.push_back(get(p));
        return v;
      };
      auto freq_str = [](const std::vector<double>& fr, std::size_t from, std::size_t n) {
        std::string s;
        for (std::size_t i = from; i < from + n; ++i)
          s += (s.empty() ? "" : " / ") + fmt::format("{:.2f}", fr[i]);
        return s;
      };
      const auto test_freq = type_frequencies(eval_graphs);
      double test_atoms = 0;
      for (const auto& g : eval_graphs)
        test_atoms += double(g.node_count()) / double(eval_graphs.size());
      md += fmt::format("| QM9 test | {:.2f} | 1 | | | | | | | | | {} | {} |\n", test_atoms,
                        freq_str(test_freq, 0, 4), freq_str(test_freq, 4, 3));
      Csv props_csv({"model", "qed", "logp", "mw", "rings"});
      for (const auto& p : eval_props)
        props_csv.row(std::string("test"), {p.qed, p.logp, p.mw, double(p.rings)});
      for (const auto& [name, e] : samplers) {
        (void)e;
        const Sampled& s = sampled[name];
        double w[4] = {NAN, NAN, NAN, NAN};
        if (!s.props.empty()) {
          w[0] = wasserstein1(col(s.props, [](auto& p) { return p.qed; }),
                              col(eval_props, [](auto& p) { return p.qed; }));
          w[1] = wasserstein1(col(s.props, [](auto& p) { return p.logp; }),
                              col(eval_props, [](auto& p) { return p.logp; }));
          w[2] = wasserstein1(col(s.props, [](auto& p) { return p.mw; }),
                              col(eval_props, [](auto& p) { return p.mw; }));
          w[3] = wasserstein1(col(s.props, [](auto& p) { return double(p.rings); }),
                              col(eval_props, [](auto& p) { return double(p.rings); }));
        }
        const auto fr = type_frequencies(s.graphs);
        md += fmt::format(
            "| {} | {:.2f} | {:.2f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {} | {} | {} | {} | {} | "
            "{} |\n",
            name, s.atoms, s.fragments, s.metrics.validity, s.metrics.validity_corrected,
            s.metrics.uniqueness, s.metrics.novelty, fmt3(w[0]), fmt3(w[1]), fmt3(w[2]), fmt3(w[3]),
            freq_str(fr, 0, 4), freq_str(fr, 4, 3));
        record("molecules", name, "atoms", s.atoms);
        record("molecules", name, "fragments", s.fragments);
        record("molecules", name, "validity", s.metrics.validity);
        record("molecules", name, "validity_corrected", s.metrics.validity_corrected);
        record("molecules", name, "uniqueness", s.metrics.uniqueness);
        record("molecules", name, "novelty", s.metrics.novelty);
        for (int q = 0; q < 4; ++q)
          record("molecules", name,
                 std::array{"w1_qed", "w1_logp", "w1_mw", "w1_rings"}[std::size_t(q)], w[q]);
        for (const auto& p : s.props) props_csv.row({name}, {p.qed, p.logp, p.mw, double(p.rings)});
        // a picture of the first 24 valid molecules
        std::vector<std::string> pics, legends;
        for (std::size_t i = 0; i < s.smiles.size() && pics.size() < 24; ++i) {
          pics.push_back(s.smiles[i]);
          legends.push_back(fmt::format("QED {:.2f} logP {:.1f}", s.props[i].qed, s.props[i].logp));
        }
        if (!pics.empty())
          mol::draw_grid_png(pics, legends, 6, 200,
                             (dir / fmt::format("molecules_{}.png", name)).string());
      }
      props_csv.save(dir / "properties.csv");
      md +=
          "\nAtoms and fragments: per generated graph as decoded. Valid w/o corr.: the graph as "
          "it is is one molecule RDKit sanitises; valid: after MoFlow's valence correction and "
          "keeping the largest fragment; unique and novel (not in the training split): among "
          "those; W1 and the type frequencies: of those, against the test molecules.\n";

      // property optimisation: valid, unique, novel samples
      md += "\n### Property optimisation (valid, unique, novel samples)\n\n";
      for (const auto& tg : targets) {
        md += fmt::format(
            "Target: {} ≥ {:.3f} (the top decile of the training subset; the expert saw {} "
            "molecules).\n\n| model | molecules | mean | top 1 | top 2 | top 3 | meeting the "
            "target |\n"
            "|---|---|---|---|---|---|---|\n",
            tg.name == "qed" ? "QED" : "logP", tg.threshold, expert_idx[tg.name].size());
        {
          std::vector<double> v = col(eval_props, [&](auto& p) { return Target::of(p, tg.name); });
          std::sort(v.rbegin(), v.rend());
          double meet = 0;
          for (double x : v) meet += x >= tg.threshold;
          md += fmt::format(
              "| QM9 test (reference) | {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} |\n",
              v.size(), std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()), v[0], v[1],
              v[2], meet / double(v.size()));
        }
        for (const std::string& name :
             {std::string("generic"), "expert-" + tg.name, "poe-" + tg.name, "goal-" + tg.name}) {
          const Sampled& s = sampled[name];
          std::set<std::string> seen;
          std::vector<double> v;
          for (std::size_t i = 0; i < s.smiles.size(); ++i)
            if (!m.train_set.count(s.smiles[i]) && seen.insert(s.smiles[i]).second)
              v.push_back(Target::of(s.props[i], tg.name));
          std::sort(v.rbegin(), v.rend());
          double meet = 0;
          for (double x : v) meet += x >= tg.threshold;
          const double mean =
              v.empty() ? NAN : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
          auto top = [&](std::size_t i) { return i < v.size() ? v[i] : NAN; };
          const double frac = v.empty() ? NAN : meet / double(v.size());
          md += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", name, v.size(), fmt3(mean),
                            fmt3(top(0)), fmt3(top(1)), fmt3(top(2)), fmt3(frac));
          const std::string key = "opt_" + tg.name;
          record(key, name, "count", double(v.size()));
          record(key, name, "mean", mean);
          for (std::size_t i = 0; i < 3; ++i)
            record(key, name, fmt::format("top{}", i + 1), top(i));
          record(key, name, "fraction_meeting_target", frac);
        }
        md += "\n";
        plot(dir, fmt::format("properties_{}.gp", tg.name),
             fmt::format(R"(set terminal pngcairo size 900,500
set output 'properties_{0}.png.tmp'
set datafile separator ','
set title '{1} of the test set and of the samples (valid, after correction)'
set xlabel '{1}'
set ylabel 'molecules'
set style fill transparent solid 0.35
set key top left
bw = {2}
bin(x) = bw * floor(x / bw) + bw / 2
plot for [s in "test generic expert-{0} poe-{0} goal-{0}"] 'properties.csv' using (strcol(1) eq s ? bin(column({3})) : 1/0):(1) smooth frequency with steps lw 2 title s
)",
                         tg.name, tg.name == "qed" ? "QED" : "logP", tg.name == "qed" ? 0.02 : 0.25,
                         tg.name == "qed" ? 2 : 3),
             {fmt::format("properties_{}.png", tg.name)});
      }
    }

    if (do_comm) {
      const CommunitySmall d = community_small(f.seed + 11);
      const GraphLayout l = layout_of(d.train[0]);
      const std::size_t per_draw = d.test.size(), G = per_draw * f.community_draws;
      const std::vector<std::size_t> counts = community::node_counts(d.train);
      const double density = community::density(d.train);
      // every set of graphs goes to a file first, and is scored from what the file holds
      const std::vector<EdgeListGraph> test_el = community::to_edge_lists(d.test, 0);
      write_edge_lists(dir / "community_test.txt", test_el);
      struct Row {
        std::string name, label;
        GraphMmdDraws m;
        double nodes = 0, edges = 0, seconds = NAN;
      };
      std::vector<Row> rows;
      std::vector<std::pair<std::string, std::vector<TypedGraph>>> pictures;
      std::string diagnosis;
      auto score_set = [&](const std::string& name, const std::string& label,
                           const std::vector<TypedGraph>& gs, std::size_t per, double secs) {
        const auto el = community::to_edge_lists(gs, per);
        write_edge_lists(dir / fmt::format("community_{}.txt", name), el);
        Row r{
            name,
            label,
            community::score(test_el, read_edge_lists(dir / fmt::format("community_{}.txt", name))),
            0,
            0,
            secs};
        for (const auto& g : el)
          r.nodes += double(g.nodes) / double(el.size()),
              r.edges += double(g.edges.size()) / double(el.size());
        community::record_scores(name, r.m, record);
        record("community", name, "nodes", r.nodes);
        record("community", name, "edges", r.edges);
        rows.push_back(std::move(r));
      };
      // the floor: the training graphs, in draws of the test set's size
      score_set("train", "training graphs (the floor)", d.train, per_draw, NAN);
      {
        Rng rng(f.seed + 700);
        score_set("er", fmt::format("Erdős–Rényi, p = {:.3f} (the training density)", density),
                  community::erdos_renyi(counts, density, l.nodes, G, rng), per_draw, NAN);
        score_set("complete", "complete graphs", community::erdos_renyi(counts, 1, l.nodes, G, rng),
                  per_draw, NAN);
      }
      const std::vector<std::string> models = parse_list("--community-models", f.community_models);
      for (const std::string& model : models) {
        const auto t_start = std::chrono::steady_clock::now();
        std::vector<TypedGraph> gen;
        std::string label;
        if (model == "graphebm") {
          std::vector<std::size_t> idx(d.train.size());
          std::iota(idx.begin(), idx.end(), 0);
          Progress bar("graphs: community-small, GraphEBM", f.community_steps);
          long done = 0;
          auto e = new_energy(f, l, f.community_adj_scale, f.seed + 400);
          train(*e, f, d.train, idx, {}, f.community_steps, f.seed + 500, bar, done, "community");
          gen = generate(*e, f, l, G, f.seed + 600);
          label = fmt::format("GraphEBM's energy by CD ({} steps)", f.community_steps);
          // what the trained energy tells apart: the training graphs against graphs on the same
          // nodes with Erdős–Rényi edges at the same density, with no edge, with every edge
          Rng rng(f.seed + 650);
          std::vector<TypedGraph> same_er, same_empty, same_full;
          for (const auto& g : d.train) {
            TypedGraph er(g.n, 2, 2), empty(g.n, 2, 2), full(g.n, 2, 2);
            for (std::size_t i = 0; i < g.n; ++i)
              er.nodes[i] = empty.nodes[i] = full.nodes[i] = g.nodes[i];
            for (std::size_t i = 0; i < g.n; ++i)
              for (std::size_t j = i + 1; j < g.n; ++j)
                if (g.has_node(i) && g.has_node(j)) {
                  full.set_edge(i, j, 0);
                  if (rng.bernoulli(density)) er.set_edge(i, j, 0);
                }
            same_er.push_back(er), same_empty.push_back(empty), same_full.push_back(full);
          }
          auto energies = [&](const std::vector<TypedGraph>& gs) {
            std::vector<std::size_t> idx2(gs.size());
            std::iota(idx2.begin(), idx2.end(), 0);
            Rng none(0);
            const Array<T> x = graphs_to_rows<T>(gs, idx2, l, 0, none);
            Tape<T> t;
            double m = 0, q = 0;
            const Array<T> v = (*e)(t, t.constant(x)).value();
            for (T z : v) m += double(z) / double(v.size());
            for (T z : v) q += (double(z) - m) * (double(z) - m) / double(v.size() - 1);
            return std::pair{m, std::sqrt(q)};
          };
          const auto [e_data, sd_data] = energies(d.train);
          const double e_er = energies(same_er).first, e_empty = energies(same_empty).first,
                       e_full = energies(same_full).first;
          record("community", "graphebm", "energy_train", e_data);
          record("community", "graphebm", "energy_train_sd", sd_data);
          record("community", "graphebm", "energy_er_same_nodes", e_er);
          record("community", "graphebm", "energy_edgeless_same_nodes", e_empty);
          record("community", "graphebm", "energy_complete_same_nodes", e_full);
          diagnosis = fmt::format(
              "GraphEBM's trained energy on the training graphs' node sets (mean over the 80): "
              "the training graphs {:.4f} (sd {:.4f}), the same nodes with Erdős–Rényi edges at "
              "the training density {:.4f}, with no edge {:.4f}, with every edge {:.4f}.\n\n",
              e_data, sd_data, e_er, e_empty, e_full);
        } else {
          gen = train_score_model(f, d.train, counts, G);
          label = fmt::format("noise-conditional energy by DSM ({} steps)", f.score_steps);
        }
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
        results["community_seconds"][model] = secs;
        score_set(model, label, gen, per_draw, secs);
        pictures.push_back({model, std::move(gen)});
      }
      double tn = 0, tedges = 0;
      for (const auto& g : d.test)
        tn += double(g.node_count()) / double(d.test.size()),
            tedges += double(g.edge_count()) / double(d.test.size());
      md += fmt::format(
          "## Community-small\n\n{} training and {} test graphs (12–20 nodes, two G(k, 0.7) "
          "communities; test: {:.1f} nodes and {:.1f} edges on average). Every generator gives "
          "{} draws of {} graphs; each draw, its isolated nodes removed, is scored against the "
          "test graphs (MMD², GraphRNN/GDSS kernels); mean ± standard deviation over the draws. "
          "The graphs are in community_<generator>.txt (edge lists, io/edge_lists.hpp).\n\n"
          "| generator | degree | clustering | orbit | nodes | edges | training s |\n"
          "|---|---|---|---|---|---|---|\n",
          d.train.size(), d.test.size(), tn, tedges, f.community_draws, per_draw);
      auto pm = [](double m, double sd) {
        return std::isfinite(m) ? fmt::format("{:.3f} ± {:.3f}", m, sd) : std::string("–");
      };
      for (const Row& r : rows)
        md += fmt::format("| {} | {} | {} | {} | {:.1f} | {:.1f} | {} |\n", r.label,
                          pm(r.m.mean.degree, r.m.sd.degree),
                          pm(r.m.mean.clustering, r.m.sd.clustering),
                          pm(r.m.mean.orbit, r.m.sd.orbit), r.nodes, r.edges,
                          std::isfinite(r.seconds) ? fmt::format("{:.0f}", r.seconds) : "");
      md +=
          "| GraphRNN (published, GDSS's Table 1) | 0.080 | 0.120 | 0.040 | | | |\n"
          "| EDP-GNN (published, GDSS's Table 1) | 0.053 | 0.144 | 0.026 | | | |\n"
          "| GDSS (published, GDSS's Table 1) | 0.045 | 0.086 | 0.007 | | | |\n\n";
      md += diagnosis;
      Csv pic({"x", "y", "dx", "dy", "node"});
      community_csv(
          pic,
          std::vector<TypedGraph>(d.train.begin(),
                                  d.train.begin() + std::min<std::size_t>(6, d.train.size())),
          0);
      std::string titles = "training graphs (top)";
      for (std::size_t k = 0; k < pictures.size(); ++k) {
        const auto& gs = pictures[k].second;
        community_csv(
            pic,
            std::vector<TypedGraph>(gs.begin(), gs.begin() + std::min<std::size_t>(6, gs.size())),
            -3.0 * double(k + 1));
        titles += fmt::format(", {} (row {})", pictures[k].first, k + 2);
      }
      pic.save(dir / "community.csv");
      plot(dir, "community.gp",
           fmt::format(R"(set terminal pngcairo size 1200,{}
set output 'community.png.tmp'
set datafile separator ','
set title 'community-small: {}'
unset xtics
unset ytics
unset border
set size ratio -1
plot 'community.csv' using 1:($5 == 0 ? $2 : 1/0):3:4 with vectors nohead lc rgb '#888888' notitle, \
     'community.csv' using 1:($5 == 1 ? $2 : 1/0) with points pt 7 ps 0.8 lc rgb '#1f77b4' notitle
)",
                       250 + 200 * pictures.size(), titles),
           {"community.png"});
    }

    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    results["seconds"] = seconds;
    const int status = check_finite("graphs", results);
    write_json(dir / "results.json", results);
    csv.save(dir / "results.csv");
    write_file_atomic(dir / "results.md", md);
    fmt::print("\n{}\noutputs in {} ({:.0f} s)\n", md, dir.string(), seconds);
    return status;
  } catch (const FlagError& e) {
    fmt::print(stderr, "graphs: {}\n", e.what());
    return 2;
  } catch (const DivergenceError& e) {
    fmt::print(stderr, "\ngraphs: {}\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    fmt::print(stderr, "graphs: {}\n", error_line(e));
    return 1;
  }
}
