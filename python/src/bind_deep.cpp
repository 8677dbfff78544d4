// Image and graph energies, and classifiers read as EBMs (JEM), from Python: the CNN energy
// (ebm/energy.hpp), the R-GCN graph energy (ebm/graph_ebm.hpp) with the graph MMDs of the
// literature (metrics/graph_stats.hpp), and ClassifierEbm with JEM's trainer, its samples, its
// out-of-distribution scores and PGD (ebm/jem.hpp).
#include "ebm/energy.hpp"
#include "ebm/graph_ebm.hpp"
#include "ebm/jem.hpp"
#include "metrics/graph_stats.hpp"
#include "python/src/common.hpp"

namespace ebl::py_bind {

namespace {

// (channels, kernel, stride, padding, pool) per block; trailing entries may be left out.
CnnSpec cnn_spec(std::size_t channels, std::size_t height, std::size_t width,
                 const std::vector<std::vector<std::size_t>>& blocks,
                 const std::vector<std::size_t>& hidden, std::size_t outputs, bool global_pool) {
  CnnSpec s;
  s.channels = channels, s.height = height, s.width = width;
  for (const auto& b : blocks) {
    if (b.empty() || b.size() > 5)
      throw std::invalid_argument(
          "a CNN block is (channels[, kernel[, stride[, padding[, pool]]]]), 1 to 5 integers");
    ConvBlock c{.channels = b[0]};
    if (b.size() > 1) c.kernel = b[1];
    if (b.size() > 2) c.stride = b[2];
    if (b.size() > 3) c.padding = b[3];
    if (b.size() > 4) c.pool = b[4];
    s.blocks.push_back(c);
  }
  s.hidden = hidden;
  s.outputs = outputs;
  s.global_pool = global_pool;
  return s;
}

template <class T>
void bind_for(py::module_& m) {
  using E = Energy<T>;
  py::class_<CnnEnergy<T>, E, std::shared_ptr<CnnEnergy<T>>>(
      m, typed<T>("CnnEnergy").c_str(),
      R"(E_theta(x) = CNN(x) for images given as flat rows x [n, c*h*w]: blocks of convolution,
activation and average pooling, then linear layers to one output. blocks: a list of
(channels[, kernel=3[, stride=1[, padding=1[, pool=1]]]]).)")
      .def(py::init([](std::size_t c, std::size_t h, std::size_t w,
                       const std::vector<std::vector<std::size_t>>& blocks,
                       const std::vector<std::size_t>& hidden, const std::string& act,
                       bool global_pool, std::uint64_t seed) {
             Rng rng(seed);
             return std::make_shared<CnnEnergy<T>>(
                 cnn_spec(c, h, w, blocks, hidden, 1, global_pool), parse_activation(act), rng);
           }),
           py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("blocks"),
           py::arg("hidden") = std::vector<std::size_t>{}, py::arg("activation") = "silu",
           py::arg("global_pool") = false, py::arg("seed") = 0);

  const GraphEnergyOptions go{};
  py::class_<GraphEnergy<T>, E, std::shared_ptr<GraphEnergy<T>>>(
      m, typed<T>("GraphEnergy").c_str(),
      R"(GraphEBM's energy (Liu et al. 2021): relational graph convolutions with spectral normalisation
and a sum readout over graphs given as rows [B, nodes*node_types + edge_types*nodes^2] (the node
one-hots X, then the adjacency channels A, the "no edge" channel included).)")
      .def(py::init([](std::size_t nodes, std::size_t node_types, std::size_t edge_types,
                       std::size_t hidden, std::size_t depth, bool sn, bool none_msgs, double scale,
                       std::uint64_t seed) {
             Rng rng(seed);
             GraphEnergyOptions o;
             o.hidden = hidden, o.depth = depth, o.spectral_norm = sn;
             o.none_channel_messages = none_msgs, o.adjacency_scale = scale;
             return std::make_shared<GraphEnergy<T>>(nodes, node_types, edge_types, o, rng);
           }),
           py::arg("nodes"), py::arg("node_types"), py::arg("edge_types"),
           py::arg("hidden") = go.hidden, py::arg("depth") = go.depth,
           py::arg("spectral_norm") = go.spectral_norm,
           py::arg("none_channel_messages") = go.none_channel_messages,
           py::arg("adjacency_scale") = go.adjacency_scale, py::arg("seed") = 0)
      .def("update_spectral_norm", &GraphEnergy<T>::update_spectral_norm,
           "One power iteration of every spectrally normalised weight (once per training step).");

  // a classifier read as an EBM, owning its network
  using C = ClassifierEbm<T>;
  py::class_<C, std::shared_ptr<C>>(
      m, typed<T>("ClassifierEbm").c_str(),
      R"(A classifier f(x) -> logits [n, K] read as an energy-based model (Grathwohl et al. 2020):
E(x) = -logsumexp_y f(x)[y] (the marginal), E(x, y) = -f(x)[y], p(y | x) = softmax f(x).)")
      .def(py::init([](std::size_t dim, std::size_t classes, const std::vector<std::size_t>& hidden,
                       const std::string& act, std::uint64_t seed) {
             Rng rng(seed);
             std::vector<std::size_t> sizes{dim};
             sizes.insert(sizes.end(), hidden.begin(), hidden.end());
             sizes.push_back(classes);
             return std::make_shared<C>(std::make_shared<MLP<T>>(sizes, parse_activation(act), rng),
                                        classes);
           }),
           py::arg("dim"), py::arg("classes"), py::arg("hidden") = std::vector<std::size_t>{128},
           py::arg("activation") = "silu", py::arg("seed") = 0,
           "An MLP classifier dim -> hidden... -> classes.")
      .def_static(
          "cnn",
          [](std::size_t c, std::size_t h, std::size_t w,
             const std::vector<std::vector<std::size_t>>& blocks, std::size_t classes,
             const std::vector<std::size_t>& hidden, const std::string& act, bool global_pool,
             std::uint64_t seed) {
            Rng rng(seed);
            return std::make_shared<C>(
                std::make_shared<Cnn<T>>(cnn_spec(c, h, w, blocks, hidden, classes, global_pool),
                                         parse_activation(act), rng),
                classes);
          },
          py::arg("channels"), py::arg("height"), py::arg("width"), py::arg("blocks"),
          py::arg("classes"), py::arg("hidden") = std::vector<std::size_t>{},
          py::arg("activation") = "silu", py::arg("global_pool") = false, py::arg("seed") = 0,
          "A CNN classifier on flat image rows (blocks as in CnnEnergy).")
      .def(
          "logits",
          [](C& c, const NpIn<T>& x) {
            Array<T> xa = to_array<T>(x);
            Tape<T> t;
            return to_numpy(c.logits(t, t.input_ref(xa)).value());
          },
          py::arg("x"))
      .def(
          "probabilities",
          [](C& c, const NpIn<T>& x) { return to_numpy(class_probabilities(c, to_array<T>(x))); },
          py::arg("x"), "p(y | x) [n, K] (float64).")
      .def(
          "marginal_energy",
          [](std::shared_ptr<C> c) -> std::shared_ptr<E> {
            struct Owned : MarginalEnergy<T> {
              std::shared_ptr<C> keep;
              explicit Owned(std::shared_ptr<C> k) : MarginalEnergy<T>(*k), keep(std::move(k)) {}
            };
            return std::make_shared<Owned>(c);
          },
          "E(x) = -logsumexp_y f(x)[y] as an Energy (for the samplers).")
      .def(
          "class_energy",
          [](std::shared_ptr<C> c, std::size_t y) -> std::shared_ptr<E> {
            struct Owned : ClassEnergy<T> {
              std::shared_ptr<C> keep;
              Owned(std::shared_ptr<C> k, std::size_t yy)
                  : ClassEnergy<T>(*k, yy), keep(std::move(k)) {}
            };
            return std::make_shared<Owned>(c, y);
          },
          py::arg("y"), "E(x | y) = -f(x)[y] as an Energy: the samplers draw class y from it.")
      .def(
          "ood_scores",
          [](C& c, const NpIn<T>& x) {
            OodScores s = ood_scores(c, to_array<T>(x));
            return py::dict(py::arg("log_px") = to_numpy(s.log_px),
                            py::arg("max_prob") = to_numpy(s.max_prob),
                            py::arg("neg_grad_norm") = to_numpy(s.neg_grad_norm));
          },
          py::arg("x"),
          "JEM's OOD scores, higher = in distribution: -E(x), max_y p(y|x), -||grad_x E||.")
      .def(
          "pgd_attack",
          [](C& c, const NpIn<T>& x, const NpIn<long long>& y, const std::string& norm, double eps,
             int steps, double step_size, bool random_start, double lo, double hi, Rng& rng) {
            PgdOptions o;
            if (norm == "linf")
              o.norm = PgdNorm::Linf;
            else if (norm == "l2")
              o.norm = PgdNorm::L2;
            else
              throw std::invalid_argument("pgd_attack: norm must be 'linf' or 'l2'");
            o.eps = eps, o.steps = steps, o.step_size = step_size, o.random_start = random_start;
            o.lo = lo, o.hi = hi;
            Array<T> xa = to_array<T>(x);
            std::vector<std::size_t> ys = labels_of(y);
            return to_numpy(long_call(
                [&] { return pgd_attack(c, xa, std::span<const std::size_t>(ys), o, rng); }));
          },
          py::arg("x"), py::arg("y"), py::arg("norm") = "linf", py::arg("eps") = 0.03,
          py::arg("steps") = 20, py::arg("step_size") = 0.0, py::arg("random_start") = true,
          py::arg("lo") = -1.0, py::arg("hi") = 1.0, py::arg("rng"),
          "Projected gradient ascent on the cross-entropy (Madry et al. 2018) within eps of x.")
      .def("parameters", &C::parameters, py::return_value_policy::reference_internal)
      .def_property_readonly("classes", &C::classes)
      .def_property_readonly("dtype", [](const C&) { return dtype_name<T>(); });

  struct Jem {
    std::shared_ptr<C> model;
    std::unique_ptr<JemTrainer<T>> trainer;
    Array<T> x;
  };
  const JemOptions jo{};
  py::class_<Jem, std::shared_ptr<Jem>>(
      m, typed<T>("JemTrainer").c_str(),
      R"(JEM's trainer: cross-entropy on p(y|x) plus, if generative, log p(x) by SGLD from a replay
buffer (20 steps of step size s and noise sigma, as JEM's reference), with Adam and a linear
learning-rate warm-up. generative=False is the cross-entropy-only baseline.)")
      .def(py::init([](std::shared_ptr<C> model, std::size_t dim, std::uint64_t seed, bool gen,
                       double lr, long warmup, int sgld_steps, double sgld_step, double sgld_noise,
                       std::size_t buffer, double reinit, double lo, double hi, bool per_class,
                       double data_noise, double alpha, double bound, int threads) {
             JemOptions o;
             o.generative = gen, o.lr = lr, o.warmup_steps = warmup, o.sgld_steps = sgld_steps;
             o.sgld_step = sgld_step, o.sgld_noise = sgld_noise, o.buffer_size = buffer;
             o.reinit = reinit, o.lo = lo, o.hi = hi, o.per_class_buffer = per_class;
             o.data_noise = data_noise, o.alpha = alpha, o.loss_bound = bound, o.threads = threads;
             auto j = std::make_shared<Jem>();
             j->model = model;
             j->trainer = std::make_unique<JemTrainer<T>>(*model, o, seed, dim);
             return j;
           }),
           py::arg("model"), py::arg("dim"), py::arg("seed") = 0,
           py::arg("generative") = jo.generative, py::arg("lr") = jo.lr,
           py::arg("warmup_steps") = jo.warmup_steps, py::arg("sgld_steps") = jo.sgld_steps,
           py::arg("sgld_step") = jo.sgld_step, py::arg("sgld_noise") = jo.sgld_noise,
           py::arg("buffer_size") = jo.buffer_size, py::arg("reinit") = jo.reinit,
           py::arg("lo") = jo.lo, py::arg("hi") = jo.hi,
           py::arg("per_class_buffer") = jo.per_class_buffer, py::arg("data_noise") = jo.data_noise,
           py::arg("alpha") = jo.alpha, py::arg("loss_bound") = jo.loss_bound,
           py::arg("threads") = jo.threads)
      .def(
          "step",
          [](Jem& j, const NpIn<T>& x, const NpIn<long long>& y) {
            to_array<T>(x, j.x);
            std::vector<std::size_t> ys = labels_of(y);
            JemStepStats s =
                long_call([&] { return j.trainer->step(j.x, std::span<const std::size_t>(ys)); });
            return py::dict(py::arg("loss") = s.loss, py::arg("ce") = s.ce,
                            py::arg("e_pos") = s.e_pos, py::arg("e_neg") = s.e_neg,
                            py::arg("accuracy") = s.accuracy);
          },
          py::arg("x"), py::arg("y"),
          "One step on a labelled batch; returns its loss, CE, E(x+), E(x-), accuracy.")
      .def(
          "sample",
          [](Jem& j, std::size_t n, int steps, std::optional<std::size_t> y, Rng& rng) {
            return to_numpy(long_call([&] { return j.trainer->sample(n, steps, y, rng); }));
          },
          py::arg("n"), py::arg("steps"), py::arg("y") = py::none(), py::arg("rng"),
          "n fresh samples from uniform noise by `steps` SGLD steps on E(x), or on E(x | y).")
      .def("checkpoint", [](Jem& j) { return j.trainer->checkpoint(); })
      .def(
          "restore", [](Jem& j, const Checkpoint& c) { j.trainer->restore(c); },
          py::arg("checkpoint"))
      .def_property_readonly("steps_done", [](Jem& j) { return j.trainer->steps_done(); });
}

}  // namespace

void bind_deep(py::module_& m) {
  bind_for<float>(m);
  bind_for<double>(m);
  py::class_<GraphMmd>(m, "GraphMmd", "Degree, clustering and orbit MMD^2 (GraphRNN's kernels).")
      .def_readonly("degree", &GraphMmd::degree)
      .def_readonly("clustering", &GraphMmd::clustering)
      .def_readonly("orbit", &GraphMmd::orbit);
  m.def("graph_mmd", &graph_mmd, py::arg("reference"), py::arg("generated"),
        R"(The three MMD^2 of the graph-generation literature between two sets of graphs, each graph
given as adjacency lists (graph[i] = the neighbours of node i): degree and clustering histograms
with the Gaussian-EMD kernel (sigma 1 and 0.1), orbit counts with a Gaussian kernel (sigma 30).)");
  m.def("degree_histogram", &degree_histogram, py::arg("graph"),
        "The number of nodes of each degree (index = degree).");
  m.def("clustering_coefficients", &clustering_coefficients, py::arg("graph"));
  m.def("connected_components", &connected_components, py::arg("graph"));
  m.def("wasserstein1", &wasserstein1, py::arg("a"), py::arg("b"),
        "W1 between the empirical distributions of two samples on the line.");
}

}  // namespace ebl::py_bind
