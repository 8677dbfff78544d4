// Energies, their composition, optimizers and trainers from Python: the energies of ebm/energy.hpp
// and ebm/compose.hpp (and an energy written in Python, on the tape or as a black box returning
// E and grad_x), SGD and Adam, contrastive divergence (ebm/cd.hpp), the MCMC-free objectives
// (ebm/objectives.hpp), checkpoints (io/checkpoint.hpp, the binaries' file format) and the exact
// Boltzmann–Gibbs quantities (ebm/boltzmann.hpp).
#include "ebm/boltzmann.hpp"
#include "ebm/cd.hpp"
#include "ebm/compose.hpp"
#include "ebm/energy.hpp"
#include "ebm/objectives.hpp"
#include "io/checkpoint.hpp"
#include "python/src/common.hpp"

namespace ebl::py_bind {

namespace {

template <class T>
using EPtr = std::shared_ptr<Energy<T>>;

// An energy written in Python on the tape: fn(tape, x) -> Var, with its parameters listed.
template <class T>
class TapeEnergy : public Energy<T> {
 public:
  TapeEnergy(py::function fn, std::vector<Parameter<T>*> params, py::list keep)
      : fn_(std::move(fn)), params_(std::move(params)), keep_(std::move(keep)) {}
  ~TapeEnergy() override {
    py::gil_scoped_acquire gil;
    fn_ = py::function();
    keep_ = py::list();
  }
  Var<T> operator()(Tape<T>& t, Var<T> x) override {
    py::gil_scoped_acquire gil;
    LentTape<T> lent(t);
    py::object r = fn_(lent.handle, lent.var(x));
    Var<T> y;
    try {
      y = r.cast<PyVar<T>>().get();
    } catch (const py::cast_error&) {
      throw std::invalid_argument(std::string("TapeEnergy: the function must return a ") +
                                  dtype_name<T>() + " Var on the tape it was given");
    }
    if (y.tape != &t)
      throw std::invalid_argument("TapeEnergy: the result is not on the tape it was given");
    return y;
  }
  std::vector<Parameter<T>*> parameters() override { return params_; }

 private:
  py::function fn_;
  std::vector<Parameter<T>*> params_;
  py::list keep_;  // the Parameter objects, kept alive with the energy
};

// A Python callable x -> (energies [n], grad_x [n, d]) as the library's ExternalEnergy.
template <class T>
EPtr<T> external_energy(py::function fn) {
  auto holder = std::shared_ptr<py::function>(new py::function(std::move(fn)), [](py::function* p) {
    py::gil_scoped_acquire gil;
    delete p;
  });
  return std::make_shared<ExternalEnergy<T>>([holder](const Array<T>& x, Array<T>& e, Array<T>& g) {
    py::gil_scoped_acquire gil;
    py::object r = (*holder)(to_numpy(x));
    try {
      if (!py::isinstance<py::sequence>(r) || py::len(r) != 2) throw py::cast_error();
      py::sequence pair = r.cast<py::sequence>();
      to_array<T>(pair[0].cast<NpIn<T>>(), e);
      to_array<T>(pair[1].cast<NpIn<T>>(), g);
    } catch (const py::cast_error&) {
      throw std::invalid_argument(
          "external_energy: the function must return (energies, gradients) as arrays");
    }
  });
}

// The energy of a batch, its gradient in x and in theta, on a tape made for the call.
template <class T>
Array<T> energies_of(Energy<T>& e, const Array<T>& x) {
  Tape<T> t;
  Var<T> y = e(t, t.input_ref(x));
  if (y.shape().size() != 1 || x.dimension() < 1 || y.shape()[0] != x.shape()[0])
    throw ShapeError("energy: the energies of a batch " + shape_str(x.shape()) +
                     " must have shape [" + std::to_string(x.dimension() ? x.shape()[0] : 0) +
                     "], got " + shape_str(y.shape()));
  return y.value();
}

template <class T>
void bind_energies(py::module_& m) {
  const std::string dt = dtype_name<T>();
  py::class_<Energy<T>, EPtr<T>>(
      m, typed<T>("Energy").c_str(),
      R"(E_theta(x): one energy per row of a batch x [n, d]. The density at inverse
temperature beta is p(x) = exp(-beta E(x)) / Z.)")
      .def(
          "__call__",
          [](Energy<T>& e, PyTape<T>& t, const PyVar<T>& x) {
            Var<T> xv = x.get();
            if (xv.tape != t.tape) throw std::invalid_argument("energy: x is not on this tape");
            return x.wrap(e(*t.tape, xv));
          },
          py::arg("tape"), py::arg("x"), "E(x) recorded on a tape (x a Var): a Var [n].")
      .def(
          "energy",
          [](Energy<T>& e, const NpIn<T>& x) {
            Array<T> xa = to_array<T>(x);
            return to_numpy(long_call([&] { return energies_of(e, xa); }));
          },
          py::arg("x"), "E(x) for a batch x [n, d]: an array [n].")
      .def(
          "grad_x",
          [](EPtr<T> e, const NpIn<T>& x) {
            Array<T> xa = to_array<T>(x), en, g;
            long_call([&] {
              EnergyGrad<T> eval([e](Tape<T>& t, Var<T> v) { return (*e)(t, v); });
              eval(xa, en, g);
              return 0;
            });
            return py::make_tuple(to_numpy(en), to_numpy(g));
          },
          py::arg("x"),
          "(E(x) [n], grad_x E(x) [n, d]); only grad_x is computed (no weight gradients).")
      .def(
          "grad_theta",
          [](Energy<T>& e, const NpIn<T>& x) {
            Array<T> xa = to_array<T>(x);
            auto grads = long_call([&] {
              Tape<T> t;
              Var<T> y = sum(e(t, t.input_ref(xa)));
              auto ps = e.parameters();
              return param_gradients<T>(y, std::span<Parameter<T>* const>(ps));
            });
            py::list out;
            for (const auto& g : grads) out.append(to_numpy(g));
            return out;
          },
          py::arg("x"),
          "The gradients of sum_i E(x_i) in the parameters, in parameters() order (p.grad "
          "untouched).")
      .def("parameters", &Energy<T>::parameters, py::return_value_policy::reference_internal,
           "The parameters (read and set their .value).")
      .def_property_readonly("dtype", [dt](const Energy<T>&) { return dt; });

  py::class_<MlpEnergy<T>, Energy<T>, std::shared_ptr<MlpEnergy<T>>>(
      m, typed<T>("MlpEnergy").c_str(),
      "E_theta(x) = MLP(x), the network ending in one output unit.")
      .def(
          py::init([](std::size_t dim, const std::vector<std::size_t>& hidden,
                      const std::string& act, std::uint64_t seed) {
            Rng rng(seed);
            return std::make_shared<MlpEnergy<T>>(dim, hidden, parse_activation(act), rng);
          }),
          py::arg("dim"), py::arg("hidden"), py::arg("activation") = "silu", py::arg("seed") = 0,
          R"(An MLP dim -> hidden... -> 1 with the given activation (relu, leaky_relu, tanh, sigmoid,
softplus, silu/swish), weights initialised from Rng(seed) as the C++ binaries do.)");

  py::class_<GaussianEnergy<T>, Energy<T>, std::shared_ptr<GaussianEnergy<T>>>(
      m, typed<T>("GaussianEnergy").c_str(),
      "E(x) = 1/2 ||A (x - mu)||^2: at beta = 1 the Gaussian N(mu, (A^T A)^-1), with its exact log "
      "Z.")
      .def(py::init([](const NpIn<T>& mu, const NpIn<T>& a) {
             return std::make_shared<GaussianEnergy<T>>(to_array<T>(mu), to_array<T>(a));
           }),
           py::arg("mu"), py::arg("a"))
      .def("log_z", &GaussianEnergy<T>::log_z, py::arg("beta") = 1.0,
           "log Z(beta) = (d/2) log(2 pi / beta) - log |det A|");

  py::class_<TapeEnergy<T>, Energy<T>, std::shared_ptr<TapeEnergy<T>>>(
      m, typed<T>("TapeEnergy").c_str(),
      R"(An energy written in Python with the tape's ops: fn(tape, x) -> Var [n]. Its parameters are
the Parameters it puts on the tape with tape.param(p); list them so that trainers update them.)")
      .def(py::init([](py::function fn, py::list params) {
             std::vector<Parameter<T>*> ps;
             for (auto p : params) ps.push_back(p.cast<Parameter<T>*>());
             return std::make_shared<TapeEnergy<T>>(std::move(fn), std::move(ps), params);
           }),
           py::arg("fn"), py::arg("parameters") = py::list());

  py::class_<ExternalEnergy<T>, Energy<T>, std::shared_ptr<ExternalEnergy<T>>>(
      m, typed<T>("ExternalEnergy").c_str(),
      R"(An energy given as a black box: fn(x [n, d]) -> (energies [n], grad_x [n, d]) as arrays (a model
of another framework, e.g. a PyTorch module). Every sampler can sample it; it has no parameters and
no second derivatives (score matching through it raises an error naming the op).)")
      .def(py::init([](py::function fn) {
             return std::static_pointer_cast<ExternalEnergy<T>>(external_energy<T>(std::move(fn)));
           }),
           py::arg("fn"));

  // composition (ebm/compose.hpp): composites share their parts
  m.def(
      "And",
      [](std::vector<EPtr<T>> parts, std::vector<double> w) {
        return And<T>(std::move(parts), std::vector<T>(w.begin(), w.end()));
      },
      py::arg("parts"), py::arg("weights") = std::vector<double>{},
      "sum_i w_i E_i: the product of experts prod_i p_i^w_i (weights default to 1).");
  m.def("Or", &Or<T>, py::arg("parts"), py::arg("s") = 1.0,
        "-(1/s) log sum_i exp(-s E_i): at s = 1 the mixture weighted by the parts' Z_i.");
  m.def(
      "Mixture", &Mixture<T>, py::arg("parts"), py::arg("weights"), py::arg("log_z"),
      "-log sum_i pi_i exp(-E_i - log Z_i): the mixture with chosen weights (needs each log Z_i).");
  m.def(
      "Not", [](EPtr<T> a, EPtr<T> b, double w) { return Not<T>(a, b, T(w)); }, py::arg("base"),
      py::arg("negated"), py::arg("w") = 1.0, "E_a - w E_b: p_a / p_b^w (only with a base).");
  m.def(
      "Temper", [](EPtr<T> e, double beta) { return Temper<T>(e, T(beta)); }, py::arg("energy"),
      py::arg("beta"), "beta E: p^beta.");
}

template <class T>
void bind_training(py::module_& m) {
  using Opt = Optimizer<T>;
  py::class_<Opt, std::shared_ptr<Opt>>(
      m, typed<T>("Optimizer").c_str(),
      "An optimizer over a list of Parameters (their .grad in, their .value updated).")
      .def(
          "step", [](Opt& o) { o.step(); }, "One update from the parameters' .grad.")
      .def("zero_grad", &Opt::zero_grad)
      .def_property_readonly("steps", [](Opt& o) { return o.steps(); });
  py::class_<Adam<T>, Opt, std::shared_ptr<Adam<T>>>(
      m, typed<T>("Adam").c_str(),
      "Adam: m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2; theta <- theta - lr m_hat / "
      "(sqrt(v_hat) + eps).")
      .def(py::init([](std::vector<Parameter<T>*> ps, double lr, double b1, double b2, double eps,
                       double wd) {
             return std::make_shared<Adam<T>>(std::move(ps),
                                              typename Adam<T>::Options{lr, b1, b2, eps, wd});
           }),
           py::arg("params"), py::arg("lr") = 1e-3, py::arg("beta1") = 0.9,
           py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0,
           py::keep_alive<1, 2>())
      .def_property(
          "lr", [](Adam<T>& o) { return o.options().lr; },
          [](Adam<T>& o, double lr) { o.options().lr = lr; });
  py::class_<SGD<T>, Opt, std::shared_ptr<SGD<T>>>(
      m, typed<T>("SGD").c_str(), "SGD: v <- mu v + (g + lambda theta); theta <- theta - lr v.")
      .def(py::init([](std::vector<Parameter<T>*> ps, double lr, double mom, double wd) {
             return std::make_shared<SGD<T>>(std::move(ps), typename SGD<T>::Options{lr, mom, wd});
           }),
           py::arg("params"), py::arg("lr") = 1e-2, py::arg("momentum") = 0.0,
           py::arg("weight_decay") = 0.0, py::keep_alive<1, 2>())
      .def_property(
          "lr", [](SGD<T>& o) { return o.options().lr; },
          [](SGD<T>& o, double lr) { o.options().lr = lr; });

  // contrastive divergence: the trainer with the energy and optimizer it references
  struct Cd {
    EPtr<T> energy;
    std::shared_ptr<Opt> opt;
    std::unique_ptr<ContrastiveDivergence<T>> cd;
    Array<T> x;
  };
  const CdOptions cdd{};
  py::class_<Cd, std::shared_ptr<Cd>>(
      m, typed<T>("CD").c_str(),
      R"(Maximum likelihood by contrastive divergence (the seed's Algorithm 1). A step draws
negatives x- with the dream sampler (Langevin, MALA or parallel tempering) started at the data
(init="data", CD-k), at uniform noise in [noise_lo, noise_hi] ("noise") or at persistent chains
from a replay buffer ("persistent", restarted from noise with probability restart_prob), and
descends L = mean E(x+) - mean E(x-) + alpha (mean E(x+)^2 + mean E(x-)^2). kl_weight > 0 adds
improved CD's KL term. A step whose loss is non-finite or beyond loss_bound raises DivergenceError
before any state changes.)")
      .def(py::init([](EPtr<T> energy, std::shared_ptr<Opt> opt, std::size_t dim,
                       std::uint64_t seed, const std::string& init, int steps, double step_size,
                       double temperature, double grad_clip, int threads,
                       const std::string& sampler, std::vector<double> ladder, double alpha,
                       double noise_lo, double noise_hi, std::size_t buffer_size,
                       double restart_prob, double loss_bound, double kl_weight) {
             CdOptions o;
             o.init = parse_chain_init(init);
             o.langevin.steps = steps;
             o.langevin.step_size = step_size;
             o.langevin.temperature = temperature;
             o.langevin.grad_clip = grad_clip;
             o.langevin.threads = threads;
             o.sampler = parse_dream_sampler(sampler);
             o.tempering_ladder = std::move(ladder);
             o.alpha = alpha;
             o.noise_lo = noise_lo;
             o.noise_hi = noise_hi;
             o.buffer_size = buffer_size;
             o.restart_prob = restart_prob;
             o.loss_bound = loss_bound;
             o.kl_weight = kl_weight;
             auto c = std::make_shared<Cd>();
             c->energy = energy;
             c->opt = opt;
             c->cd = std::make_unique<ContrastiveDivergence<T>>(*energy, *opt, o, seed, dim);
             return c;
           }),
           py::arg("energy"), py::arg("optimizer"), py::arg("dim"), py::arg("seed") = 0,
           py::arg("init") = "persistent", py::arg("steps") = cdd.langevin.steps,
           py::arg("step_size") = cdd.langevin.step_size,
           py::arg("temperature") = cdd.langevin.temperature,
           py::arg("grad_clip") = cdd.langevin.grad_clip, py::arg("threads") = cdd.langevin.threads,
           py::arg("sampler") = "langevin", py::arg("tempering_ladder") = std::vector<double>{},
           py::arg("alpha") = cdd.alpha, py::arg("noise_lo") = cdd.noise_lo,
           py::arg("noise_hi") = cdd.noise_hi, py::arg("buffer_size") = cdd.buffer_size,
           py::arg("restart_prob") = cdd.restart_prob, py::arg("loss_bound") = cdd.loss_bound,
           py::arg("kl_weight") = cdd.kl_weight)
      .def(
          "step",
          [](Cd& c, const NpIn<T>& x) {
            to_array<T>(x, c.x);
            return long_call([&] { return c.cd->step(c.x); });
          },
          py::arg("x"), "One step on a data batch x+ [n, d]; returns its CdStepStats.")
      .def(
          "checkpoint", [](Cd& c) { return c.cd->checkpoint(); },
          "Everything needed to continue the run exactly (parameters, optimizer, chains, "
          "generator).")
      .def(
          "restore", [](Cd& c, const Checkpoint& k) { c.cd->restore(k); }, py::arg("checkpoint"))
      .def(
          "restore_parameters", [](Cd& c, const Checkpoint& k) { c.cd->restore_parameters(k); },
          py::arg("checkpoint"), "Only the energy's parameters (a new run that starts from them).")
      .def_property_readonly(
          "rng", [](Cd& c) -> Rng& { return c.cd->rng(); },
          py::return_value_policy::reference_internal,
          "The trainer's generator (the binaries draw their batches from it).")
      .def_property_readonly("steps_done", [](Cd& c) { return c.cd->steps_done(); })
      .def_property_readonly(
          "negatives", [](Cd& c) { return to_numpy(c.cd->last_negatives()); },
          "The last step's x-.");

  struct Obj {
    EPtr<T> energy;
    std::shared_ptr<Opt> opt;
    std::unique_ptr<ObjectiveTrainer<T>> trainer;
    Array<T> x;
  };
  const ObjectiveOptions od{};
  py::class_<Obj, std::shared_ptr<Obj>>(
      m, typed<T>("ObjectiveTrainer").c_str(),
      R"(The MCMC-free objectives: kind = "sm" (exact score matching), "dsm" (denoising, one
level per sigma in dsm_sigmas), "ssm" (sliced, ssm_projections Rademacher or Gaussian projections,
variance-reduced if asked) or "ed" (energy discrepancy with t, m, w).)")
      .def(py::init([](EPtr<T> energy, std::shared_ptr<Opt> opt, const std::string& kind,
                       std::uint64_t seed, std::vector<double> sigmas, std::size_t projections,
                       const std::string& projection, bool vr, double ed_t, std::size_t ed_m,
                       double ed_w, double loss_bound) {
             ObjectiveOptions o;
             if (kind == "sm")
               o.kind = ObjectiveKind::ScoreMatching;
             else if (kind == "dsm")
               o.kind = ObjectiveKind::Denoising;
             else if (kind == "ssm")
               o.kind = ObjectiveKind::Sliced;
             else if (kind == "ed")
               o.kind = ObjectiveKind::EnergyDiscrepancy;
             else
               throw std::invalid_argument("unknown objective '" + kind +
                                           "' (expected sm, dsm, ssm, ed)");
             if (projection == "rademacher")
               o.ssm_projection = Projection::Rademacher;
             else if (projection == "gaussian")
               o.ssm_projection = Projection::Gaussian;
             else
               throw std::invalid_argument("unknown projection '" + projection +
                                           "' (expected rademacher, gaussian)");
             o.dsm_sigmas = std::move(sigmas);
             o.ssm_projections = projections;
             o.ssm_variance_reduced = vr;
             o.ed = {.t = ed_t, .m = ed_m, .w = ed_w};
             o.loss_bound = loss_bound;
             auto r = std::make_shared<Obj>();
             r->energy = energy;
             r->opt = opt;
             r->trainer = std::make_unique<ObjectiveTrainer<T>>(*energy, *opt, o, seed);
             return r;
           }),
           py::arg("energy"), py::arg("optimizer"), py::arg("kind") = "sm", py::arg("seed") = 0,
           py::arg("dsm_sigmas") = od.dsm_sigmas, py::arg("ssm_projections") = od.ssm_projections,
           py::arg("ssm_projection") = "rademacher", py::arg("ssm_variance_reduced") = false,
           py::arg("ed_t") = od.ed.t, py::arg("ed_m") = od.ed.m, py::arg("ed_w") = od.ed.w,
           py::arg("loss_bound") = od.loss_bound)
      .def(
          "step",
          [](Obj& o, const NpIn<T>& x) {
            to_array<T>(x, o.x);
            auto s = long_call([&] { return o.trainer->step(o.x); });
            return py::make_tuple(s.loss, s.grad_norm);
          },
          py::arg("x"), "One step on a batch; returns (loss, gradient norm).")
      .def("checkpoint", [](Obj& o) { return o.trainer->checkpoint(); })
      .def(
          "restore", [](Obj& o, const Checkpoint& k) { o.trainer->restore(k); },
          py::arg("checkpoint"))
      .def_property_readonly(
          "rng", [](Obj& o) -> Rng& { return o.trainer->rng(); },
          py::return_value_policy::reference_internal)
      .def_property_readonly("steps_done", [](Obj& o) { return o.trainer->steps_done(); });

  // exact Boltzmann–Gibbs quantities on grids and enumerable sets
  py::class_<Domain<T>>(
      m, typed<T>("Domain").c_str(),
      "Points [m, d] of a grid (with the log volume of a cell) or of a finite set.")
      .def_property_readonly("points", [](const Domain<T>& d) { return to_numpy(d.points); })
      .def_readonly("log_cell", &Domain<T>::log_cell)
      .def("__len__", &Domain<T>::size);
  m.def(typed<T>("grid_1d").c_str(), &grid_1d<T>, py::arg("lo"), py::arg("hi"), py::arg("n"));
  m.def(typed<T>("grid_2d").c_str(), &grid_2d<T>, py::arg("lo0"), py::arg("hi0"), py::arg("n0"),
        py::arg("lo1"), py::arg("hi1"), py::arg("n1"));
  m.def(typed<T>("binary_cube").c_str(), &binary_cube<T>, py::arg("dim"));
  m.def(
      "log_partition",
      [](Energy<T>& e, const Domain<T>& d, double beta) {
        return long_call([&] { return log_partition(e, d, beta); });
      },
      py::arg("energy"), py::arg("domain"), py::arg("beta") = 1.0,
      "log Z(beta) by quadrature on a grid (midpoint rule) or by enumeration of a finite set.");
  m.def(
      "nll",
      [](Energy<T>& e, const Domain<T>& d, const NpIn<T>& data, double beta) {
        Array<T> x = to_array<T>(data);
        return long_call([&] { return nll(e, d, x, beta); });
      },
      py::arg("energy"), py::arg("domain"), py::arg("data"), py::arg("beta") = 1.0,
      "The exact NLL per sample, beta mean E(data) + log Z(beta).");
  m.def(
      "density",
      [](Energy<T>& e, const Domain<T>& d, double beta) {
        return to_numpy(long_call([&] { return density(e, d, beta); }));
      },
      py::arg("energy"), py::arg("domain"), py::arg("beta") = 1.0,
      "p(x) = exp(-beta E(x)) / Z at the domain's points.");
  m.def(
      "mean_energy",
      [](Energy<T>& e, const NpIn<T>& data) {
        Array<T> x = to_array<T>(data);
        return long_call([&] { return mean_energy(e, x); });
      },
      py::arg("energy"), py::arg("data"));
}

}  // namespace

void bind_models(py::module_& m) {
  py::class_<CdStepStats>(
      m, "CdStepStats",
      "One CD step: L, mean E(x+), mean E(x-), ||grad_theta L|| and the dream chain's ChainStats.")
      .def_readonly("loss", &CdStepStats::loss)
      .def_readonly("e_pos", &CdStepStats::e_pos)
      .def_readonly("e_neg", &CdStepStats::e_neg)
      .def_readonly("grad_norm", &CdStepStats::grad_norm)
      .def_readonly("chain", &CdStepStats::chain);

  py::class_<Checkpoint>(
      m, "Checkpoint",
      R"(A run's state, in the file format of the C++ binaries (io/checkpoint.hpp): named
arrays, integers and strings. save() writes atomically; load() checks the file whole.)")
      .def(py::init<>())
      .def(
          "save", [](const Checkpoint& c, const std::string& path) { c.save(path); },
          py::arg("path"))
      .def_static(
          "load", [](const std::string& path) { return Checkpoint::load(path); }, py::arg("path"))
      .def_property_readonly("arrays",
                             [](const Checkpoint& c) {
                               py::dict d;
                               for (const auto& [k, v] : c.arrays) d[py::str(k)] = to_numpy(v);
                               return d;
                             })
      .def_readwrite("integers", &Checkpoint::integers,
                     "A copy of the named integers (assign a whole dict to replace them).")
      .def_readwrite("strings", &Checkpoint::strings,
                     "A copy of the named strings (assign a whole dict to replace them).")
      .def(
          "put_text",
          [](Checkpoint& c, const std::string& k, const std::string& v) { c.strings[k] = v; },
          py::arg("name"), py::arg("text"),
          "Stores a string, e.g. put_text('config', json) so that a binary can --resume the run.")
      .def(
          "put_integer",
          [](Checkpoint& c, const std::string& k, std::uint64_t v) { c.integers[k] = v; },
          py::arg("name"), py::arg("value"))
      .def(
          "put",
          [](Checkpoint& c, const std::string& k, const NpIn<double>& a) {
            c.put(k, to_array<double>(a));
          },
          py::arg("name"), py::arg("array"));

  bind_energies<float>(m);
  bind_energies<double>(m);
  bind_training<float>(m);
  bind_training<double>(m);
}

}  // namespace ebl::py_bind
