// The classic models from Python: E(W, Y, X) over discrete answers with the ten losses of LeCun et
// al.'s table (ebm/losses.hpp) and the classifier's trainer (ebm/classify.hpp), the 8x8 digits
// (datasets/images.hpp), and binary RBMs (ebm/rbm.hpp): block Gibbs training by CD-k, PCD and
// persistent tempering, exact log Z by enumeration, forward and reverse AIS.
#include "datasets/images.hpp"
#include "datasets/labeled.hpp"
#include "ebm/classify.hpp"
#include "ebm/energy.hpp"
#include "ebm/gbrbm.hpp"
#include "ebm/losses.hpp"
#include "ebm/rbm.hpp"
#include "python/src/common.hpp"

namespace ebl::py_bind {

namespace {

py::array_t<long long> to_numpy_labels(const std::vector<std::size_t>& y) {
  py::array_t<long long> out{py::ssize_t(y.size())};
  for (std::size_t i = 0; i < y.size(); ++i) out.mutable_data()[i] = (long long)y[i];
  return out;
}

LossOptions loss_options(double margin, double saturation, double gamma, double beta) {
  LossOptions o;
  o.margin = margin, o.saturation = saturation, o.gamma = gamma, o.beta = beta;
  return o;
}

template <class T>
void bind_losses(py::module_& m) {
  using D = DiscreteAnswerEnergy<T>;
  py::class_<D, std::shared_ptr<D>>(m, typed<T>("DiscreteAnswerEnergy").c_str(),
                                    "E(W, Y, X) over a discrete answer set: an MLP with one output "
                                    "energy per answer, X [n, d] -> [n, |Y|].")
      .def(py::init([](std::size_t dim, const std::vector<std::size_t>& hidden, std::size_t answers,
                       const std::string& act, std::uint64_t seed) {
             Rng rng(seed);
             return std::make_shared<D>(dim, hidden, answers, parse_activation(act), rng);
           }),
           py::arg("dim"), py::arg("hidden"), py::arg("answers"), py::arg("activation") = "relu",
           py::arg("seed") = 0)
      .def(
          "__call__",
          [](D& d, PyTape<T>& t, const PyVar<T>& x) {
            Var<T> xv = x.get();
            if (xv.tape != t.tape) throw std::invalid_argument("energy: x is not on this tape");
            return x.wrap(d(*t.tape, xv));
          },
          py::arg("tape"), py::arg("x"))
      .def(
          "energies",
          [](D& d, const NpIn<T>& x) {
            Array<T> xa = to_array<T>(x);
            Tape<T> t;
            return to_numpy(d(t, t.input_ref(xa)).value());
          },
          py::arg("x"), "E(W, y, X) for every answer y: [n, |Y|].")
      .def("parameters", &D::parameters, py::return_value_policy::reference_internal)
      .def_property_readonly("answers", &D::answers)
      .def_property_readonly("dtype", [](const D&) { return dtype_name<T>(); });

  using A = Answers<T>;
  // answers() keeps the Vars' tape: a Python-side holder with the epoch of the energies' Var
  struct PyAnswers {
    A a;
    PyVar<T> all, e_pos, e_neg;
  };
  py::class_<PyAnswers>(
      m, typed<T>("AnswerSet").c_str(),
      "answers(): the correct and the most offending incorrect answers' energies, on the tape.")
      .def_readonly("all", &PyAnswers::all)
      .def_readonly("e_pos", &PyAnswers::e_pos)
      .def_readonly("e_neg", &PyAnswers::e_neg)
      .def_property_readonly("y_pos", [](const PyAnswers& p) { return p.a.y_pos; })
      .def_property_readonly("y_neg", [](const PyAnswers& p) { return p.a.y_neg; });
  m.def(
      "answers",
      [](const PyVar<T>& energies, const NpIn<long long>& y, std::size_t exclude, double log_cell) {
        std::vector<std::size_t> ys = labels_of(y);
        A a = answers(energies.get(), std::span<const std::size_t>(ys), exclude, log_cell);
        return PyAnswers{a, energies.wrap(a.all), energies.wrap(a.e_pos), energies.wrap(a.e_neg)};
      },
      py::arg("energies"), py::arg("y"), py::arg("exclude") = 0, py::arg("log_cell") = 0.0,
      R"(From an energy matrix [n, m] (a Var) and the correct answers y: E(Y^i), and E(Ybar^i) of the
most offending incorrect answer (answers within `exclude` of Y^i are not candidates).)");
  m.def(
      "per_sample_loss",
      [](const std::string& kind, const PyAnswers& a, double margin, double saturation,
         double gamma, double beta) {
        return a.all.wrap(
            per_sample_loss(parse_loss(kind), a.a, loss_options(margin, saturation, gamma, beta)));
      },
      py::arg("kind"), py::arg("answers"), py::arg("margin") = 1.0, py::arg("saturation") = 1.0,
      py::arg("gamma") = 1.0, py::arg("beta") = 1.0,
      "The loss of each sample [n] (see loss_table()).");
  m.def(
      "batch_loss",
      [](const std::string& kind, const PyAnswers& a, double margin, double saturation,
         double gamma, double beta) {
        return a.all.wrap(
            batch_loss(parse_loss(kind), a.a, loss_options(margin, saturation, gamma, beta)));
      },
      py::arg("kind"), py::arg("answers"), py::arg("margin") = 1.0, py::arg("saturation") = 1.0,
      py::arg("gamma") = 1.0, py::arg("beta") = 1.0, "The mean of per_sample_loss.");
  m.def(
      "train_classifier",
      [](std::shared_ptr<D> model, const std::string& loss, const NpIn<float>& x_train,
         const NpIn<long long>& y_train, const NpIn<float>& x_test, const NpIn<long long>& y_test,
         std::size_t epochs, std::size_t batch, double lr, double margin, double saturation,
         double gamma, double beta, Rng& rng, std::optional<py::function> on_epoch) {
        Array<float> xtr = to_array<float>(x_train), xte = to_array<float>(x_test);
        std::vector<std::size_t> ytr = labels_of(y_train), yte = labels_of(y_test);
        ClassifierTraining o;
        o.epochs = epochs, o.batch = batch, o.lr = lr;
        o.loss = loss_options(margin, saturation, gamma, beta);
        const Loss kind = parse_loss(loss);
        return long_call([&] {
          return train_classifier<T>(*model, kind, {xtr, ytr}, {xte, yte}, o, rng,
                                     [&](std::size_t epoch, const ClassifierEval& ev) {
                                       poll_interrupt();
                                       if (!on_epoch) return;
                                       py::gil_scoped_acquire gil;
                                       (*on_epoch)(epoch, ev);
                                     });
        });
      },
      py::arg("model"), py::arg("loss"), py::arg("x_train"), py::arg("y_train"), py::arg("x_test"),
      py::arg("y_test"), py::arg("epochs") = 30, py::arg("batch") = 32, py::arg("lr") = 1e-3,
      py::arg("margin") = 1.0, py::arg("saturation") = 1.0, py::arg("gamma") = 1.0,
      py::arg("beta") = 1.0, py::arg("rng"), py::arg("on_epoch") = py::none(),
      R"(Trains with Adam on shuffled mini-batches; after each epoch calls on_epoch(epoch, evaluation
on the test set). Returns False if the loss became non-finite (an unbounded loss can run away).)");
  m.def(
      "evaluate_classifier",
      [](D& model, const NpIn<float>& x, const NpIn<long long>& y, double flat_tol) {
        Array<float> xa = to_array<float>(x);
        std::vector<std::size_t> ys = labels_of(y);
        return evaluate_classifier<T>(model, xa, ys, flat_tol);
      },
      py::arg("model"), py::arg("x"), py::arg("y"), py::arg("flat_tol") = 1e-3);
}

// A binary RBM with what trains it: its optimizer, its Gibbs chains, its generator.
struct RbmTrainer {
  std::shared_ptr<Rbm<double>> rbm;
  std::shared_ptr<Optimizer<double>> opt;
  RbmTrainOptions o;
  GibbsChains<double> chains;
  Rng rng;
  RbmWorkspace<double> ws;
  Array<double> v;
  std::size_t n_chains = 0;
};

// F(v) of an RBM as an Energy (the samplers' and composition's view of it).
class RbmFreeEnergy : public Energy<double> {
 public:
  explicit RbmFreeEnergy(std::shared_ptr<Rbm<double>> m) : m_(std::move(m)) {}
  Var<double> operator()(Tape<double>& t, Var<double> v) override { return m_->free_energy(t, v); }
  std::vector<Parameter<double>*> parameters() override { return m_->parameters(); }

 private:
  std::shared_ptr<Rbm<double>> m_;
};

void bind_rbm(py::module_& m) {
  using R = Rbm<double>;
  py::class_<R, std::shared_ptr<R>>(
      m, "RBM",
      R"(A binary RBM, E(v, h) = -v^T b - c^T h - v^T W h, in float64; its free energy
F(v) = -v^T b - sum_j softplus(c_j + (v^T W)_j) sums the hidden units out exactly.)")
      .def(py::init(
               [](std::size_t visible, std::size_t hidden, std::uint64_t seed, double init_std) {
                 Rng rng(seed);
                 return std::make_shared<R>(visible, hidden, rng, init_std);
               }),
           py::arg("visible"), py::arg("hidden"), py::arg("seed") = 0, py::arg("init_std") = 0.01)
      .def_property_readonly("visible", &R::visible)
      .def_property_readonly("hidden", &R::hidden)
      .def("parameters", &R::parameters, py::return_value_policy::reference_internal, "W, b, c")
      .def(
          "free_energy",
          [](const R& r, const NpIn<double>& v) {
            return to_numpy(rbm_free_energies(r, to_array<double>(v)));
          },
          py::arg("v"), "F(v) for every row of v [n, V].")
      .def(
          "as_energy",
          [](std::shared_ptr<R> r) -> std::shared_ptr<Energy<double>> {
            return std::make_shared<RbmFreeEnergy>(r);
          },
          "F(v) as an Energy: for the samplers, composition and the exact log Z on binary_cube.")
      .def(
          "exact_log_z", [](const R& r) { return long_call([&] { return rbm_exact_log_z(r); }); },
          "log Z by enumerating the smaller layer (2^min(V, H) terms).")
      .def(
          "average_loglik",
          [](const R& r, const NpIn<double>& v, double log_z) {
            return rbm_average_loglik(r, to_array<double>(v), log_z);
          },
          py::arg("v"), py::arg("log_z"), "mean(-F(v)) - log Z.")
      .def(
          "pseudo_loglik",
          [](const R& r, const NpIn<double>& v) {
            return rbm_pseudo_loglik(r, to_array<double>(v));
          },
          py::arg("v"), "Average pseudo-log-likelihood (Besag 1975).")
      .def(
          "exact_samples",
          [](const R& r, std::size_t n, Rng& rng) {
            return to_numpy(rbm_exact_samples(r, n, rng));
          },
          py::arg("n"), py::arg("rng"), "Exact draws of v (small models: by enumeration).");
  py::class_<AisResult>(
      m, "AisResult", "An AIS estimate of log Z, its standard error, and the bound in expectation.")
      .def_readonly("log_z", &AisResult::log_z)
      .def_readonly("std_err", &AisResult::std_err)
      .def_readonly("log_z_bound", &AisResult::log_z_bound)
      .def_readonly("bound_std_err", &AisResult::bound_std_err)
      .def_readonly("log_z_base", &AisResult::log_z_base)
      .def_readonly("runs", &AisResult::runs)
      .def_readonly("temperatures", &AisResult::temperatures);
  m.def(
      "rbm_ais",
      [](const R& r, const NpIn<double>& base_bias, std::size_t runs, std::size_t temps, Rng& rng) {
        Array<double> b = to_array<double>(base_bias);
        return long_call([&] { return rbm_ais(r, b, runs, temps, rng); });
      },
      py::arg("rbm"), py::arg("base_bias"), py::arg("runs"), py::arg("temperatures"),
      py::arg("rng"),
      "Forward AIS (Salakhutdinov & Murray 2008) from independent visible units: a stochastic "
      "lower bound on log Z.");
  m.def(
      "rbm_reverse_ais",
      [](const R& r, const NpIn<double>& base_bias, const NpIn<double>& v_start, std::size_t temps,
         Rng& rng) {
        Array<double> b = to_array<double>(base_bias), v = to_array<double>(v_start);
        return long_call([&] { return rbm_reverse_ais(r, b, v, temps, rng); });
      },
      py::arg("rbm"), py::arg("base_bias"), py::arg("v_start"), py::arg("temperatures"),
      py::arg("rng"), "Reverse AIS from exact model draws: a stochastic upper bound on log Z.");
  m.def(
      "base_rate_bias",
      [](const NpIn<double>& data, double pseudo) {
        return to_numpy(base_rate_bias(to_array<double>(data), pseudo));
      },
      py::arg("data"), py::arg("pseudo") = 1.0,
      "Visible biases of the independent model that fits the data's marginals.");

  py::class_<RbmTrainer, std::shared_ptr<RbmTrainer>>(
      m, "RBMTrainer",
      R"(Trains an RBM with the closed-form gradient (hidden units summed out): CD-k (chains restarted
at the data), PCD-k (persistent=True) or persistent parallel tempering (tempering_betas, from 1
down). Persistent chains start as uniform random binary states, `chains` of them (0: as many as
the first batch has rows), as experiments/rbm starts them.)")
      .def(py::init([](std::shared_ptr<R> r, std::shared_ptr<Optimizer<double>> opt, int k,
                       bool persistent, std::vector<double> betas, std::uint64_t seed,
                       std::size_t n_chains) {
             auto t = std::make_shared<RbmTrainer>();
             t->n_chains = n_chains;
             t->rbm = r, t->opt = opt, t->rng = Rng(seed);
             t->o.k = k, t->o.persistent = persistent, t->o.tempering_betas = std::move(betas);
             return t;
           }),
           py::arg("rbm"), py::arg("optimizer"), py::arg("k") = 1, py::arg("persistent") = false,
           py::arg("tempering_betas") = std::vector<double>{}, py::arg("seed") = 0,
           py::arg("chains") = 0)
      .def(
          "step",
          [](RbmTrainer& t, const NpIn<double>& v) {
            to_array<double>(v, t.v);
            if (t.v.dimension() != 2 || t.v.shape()[1] != t.rbm->visible())
              throw ShapeError("RBMTrainer.step: v must be [n, " +
                               std::to_string(t.rbm->visible()) + "], got " +
                               shape_str(t.v.shape()));
            if (t.o.persistent && t.chains.v.size() == 0) {  // fresh chains, as experiments/rbm
              const std::size_t n = t.n_chains ? t.n_chains : t.v.shape()[0];
              t.chains.v = t.rng.uniform_array<double>({n, t.rbm->visible()});
              sample_bernoulli(t.chains.v, t.rng);
            }
            long_call([&] {
              rbm_train_step(*t.rbm, *t.opt, t.v, t.chains, t.o, t.rng, t.ws);
              return 0;
            });
          },
          py::arg("v"), "One step on a batch of binary rows v [n, V].")
      .def_property_readonly(
          "chains", [](const RbmTrainer& t) { return to_numpy(t.chains.v); },
          "The persistent chains' visible states.");
}

// A Gaussian–Bernoulli RBM's trainer: its optimizer, chains, generator and tape.
struct GbrbmTrainer {
  std::shared_ptr<GaussianRbm<double>> rbm;
  std::shared_ptr<Optimizer<double>> opt;
  GbrbmChains<double> chains;
  Rng rng;
  Tape<double> tape;
  Array<double> v;
  int k = 1;
  bool persistent = false;
  std::size_t n_chains = 0;
};

void bind_gbrbm(py::module_& m) {
  using G = GaussianRbm<double>;
  py::class_<G, Energy<double>, std::shared_ptr<G>>(
      m, "GaussianRBM",
      R"(A Gaussian–Bernoulli RBM in Cho, Raiko & Ilin's (2011) parameterisation, in float64:
E(v, h) = sum_i (v_i - b_i)^2 / 2 s_i^2 - c^T h - sum_ij (v_i / s_i^2) W_ij h_j, with z = log s^2
learned (unless learn_variance=False). As an Energy it is its free energy F(v).)")
      .def(py::init([](std::size_t visible, std::size_t hidden, std::uint64_t seed, double init_std,
                       double log_var, bool learn) {
             Rng rng(seed);
             return std::make_shared<G>(visible, hidden, rng, init_std, log_var, learn);
           }),
           py::arg("visible"), py::arg("hidden"), py::arg("seed") = 0, py::arg("init_std") = 0.01,
           py::arg("log_var") = 0.0, py::arg("learn_variance") = true)
      .def_property_readonly("visible", &G::visible)
      .def_property_readonly("hidden", &G::hidden)
      .def(
          "free_energy",
          [](const G& g, const NpIn<double>& v) {
            return to_numpy(gbrbm_free_energies(g, to_array<double>(v)));
          },
          py::arg("v"), "F(v) for every row of v [n, V] (float64).")
      .def(
          "exact_log_z", [](const G& g) { return gbrbm_exact_log_z(g); },
          "log Z summed over the 2^H hidden states' Gaussians (H <= 24).")
      .def(
          "average_loglik",
          [](const G& g, const NpIn<double>& v, double log_z) {
            return gbrbm_average_loglik(g, to_array<double>(v), log_z);
          },
          py::arg("v"), py::arg("log_z"), "mean(-F(v)) - log Z.")
      .def(
          "gibbs",
          [](const G& g, const NpIn<double>& v0, int k, Rng& rng) {
            Array<double> v = to_array<double>(v0), h;
            long_call([&] {
              gbrbm_gibbs(g, v, h, k, rng);
              return 0;
            });
            return py::make_tuple(to_numpy(v), to_numpy(h));
          },
          py::arg("v"), py::arg("k"), py::arg("rng"), "k block-Gibbs sweeps from v: (v, h).")
      .def(
          "ais",
          [](const G& g, const std::vector<double>& mean, const std::vector<double>& var,
             std::size_t runs, std::size_t temps, Rng& rng) {
            return long_call([&] { return gbrbm_ais(g, mean, var, runs, temps, rng); });
          },
          py::arg("mean"), py::arg("var"), py::arg("runs"), py::arg("temperatures"), py::arg("rng"),
          "AIS from independent Gaussians N(mean, var) (e.g. base_moments of the data).");
  py::class_<GbrbmAis>(m, "GbrbmAis", "An AIS estimate of a Gaussian–Bernoulli RBM's log Z.")
      .def_readonly("log_z", &GbrbmAis::log_z)
      .def_readonly("std_err", &GbrbmAis::std_err)
      .def_readonly("log_z_base", &GbrbmAis::log_z_base)
      .def_readonly("runs", &GbrbmAis::runs);
  m.def(
      "base_moments", [](const NpIn<double>& x) { return base_moments(to_array<double>(x)); },
      py::arg("x"), "Per-unit (means, variances) of rows x [n, V]: the AIS base's moments.");
  py::class_<GbrbmTrainer, std::shared_ptr<GbrbmTrainer>>(
      m, "GaussianRBMTrainer",
      R"(CD-k (persistent=False) or PCD-k steps on a GaussianRBM: mean F(v+) - mean F(v-) descended
with the optimizer. Persistent chains start as standard normal draws, `chains` of them (0: as many
as the first batch has rows).)")
      .def(py::init([](std::shared_ptr<G> g, std::shared_ptr<Optimizer<double>> opt, int k,
                       bool persistent, std::size_t n_chains, std::uint64_t seed) {
             auto t = std::make_shared<GbrbmTrainer>();
             t->rbm = g, t->opt = opt, t->k = k, t->persistent = persistent;
             t->n_chains = n_chains, t->rng = Rng(seed);
             return t;
           }),
           py::arg("rbm"), py::arg("optimizer"), py::arg("k") = 1, py::arg("persistent") = false,
           py::arg("chains") = 0, py::arg("seed") = 0)
      .def(
          "step",
          [](GbrbmTrainer& t, const NpIn<double>& v) {
            to_array<double>(v, t.v);
            if (t.persistent && t.chains.v.dimension() != 2) {
              const std::size_t n = t.n_chains ? t.n_chains : t.v.shape()[0];
              t.chains.v = t.rng.normal_array<double>({n, t.rbm->visible()});
            }
            return long_call([&] {
              return gbrbm_train_step(*t.rbm, *t.opt, t.v, t.chains, t.k, t.persistent, t.rng,
                                      t.tape);
            });
          },
          py::arg("v"), "One step on a batch v [n, V]; returns mean F(v+) - mean F(v-).");
}

}  // namespace

void bind_classic(py::module_& m) {
  py::class_<CollapseReport>(m, "CollapseReport", "Rows whose energies over the answers are flat.")
      .def_readonly("mean_range", &CollapseReport::mean_range)
      .def_readonly("flat_fraction", &CollapseReport::flat_fraction)
      .def_readonly("collapsed", &CollapseReport::collapsed);
  py::class_<ClassifierEval>(m, "ClassifierEval",
                             "Error, mean gap E(Ybar) - E(Y), mean E(Y), collapse.")
      .def_readonly("error", &ClassifierEval::error)
      .def_readonly("mean_gap", &ClassifierEval::mean_gap)
      .def_readonly("mean_energy", &ClassifierEval::mean_energy)
      .def_readonly("collapse", &ClassifierEval::collapse);
  m.def(
      "loss_table",
      [] {
        py::list out;
        for (const auto& l : kLossTable)
          out.append(py::dict(py::arg("name") = l.name, py::arg("equation") = l.equation,
                              py::arg("formula") = l.formula, py::arg("margin") = l.margin));
        return out;
      },
      "The ten losses of LeCun et al. (2006), Table 1: name, equation, formula, margin.");
  bind_losses<float>(m);
  bind_losses<double>(m);

  m.def(
      "load_digits",
      [](const std::string& data_dir) {
        LabeledData d = load_digits_csv(default_digits_path(data_dir));
        return py::make_tuple(to_numpy(d.x), to_numpy_labels(d.y), d.classes);
      },
      py::arg("data_dir") = "",
      R"(The 8x8 digits (1,797 images, pixels in [0, 1]) carried with the library: (x [n, 64] float32,
labels, classes). data_dir, or $EBL_DATA_DIR, names where to read digits.csv.gz from.)");
  m.def(
      "digits_path",
      [](const std::string& data_dir) { return default_digits_path(data_dir).string(); },
      py::arg("data_dir") = "",
      "The digits file load_digits(data_dir) reads (see datasets/data_dir.hpp for the lookup).");
  m.def(
      "split_labeled",
      [](const NpIn<float>& x, const NpIn<long long>& y, std::size_t classes, std::size_t test,
         std::uint64_t seed) {
        LabeledData d;
        d.x = to_array<float>(x);
        d.y = labels_of(y);
        d.classes = classes;
        if (d.x.dimension() != 2 || d.x.shape()[0] != d.y.size())
          throw ShapeError("split_labeled: x " + shape_str(d.x.shape()) + " and " +
                           std::to_string(d.y.size()) + " labels do not match");
        auto [tr, te] = split(d, test, seed);
        return py::make_tuple(to_numpy(tr.x), to_numpy_labels(tr.y), to_numpy(te.x),
                              to_numpy_labels(te.y));
      },
      py::arg("x"), py::arg("y"), py::arg("classes"), py::arg("test"), py::arg("seed"),
      "The experiments' fixed split: a seeded permutation, the last `test` rows held out.");
  bind_rbm(m);
  bind_gbrbm(m);
}

}  // namespace ebl::py_bind
