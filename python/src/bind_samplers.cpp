// The samplers from Python (samplers/*.hpp): each is made from an energy and its options as
// keyword arguments, and run(x, rng) advances the chains (the rows of x) and returns the new
// states with the run's ChainStats. A run releases the GIL and stops on Ctrl-C within one
// iteration (KeyboardInterrupt; the array passed in is left as it was). trace="energy" or "x"
// records every draw for the diagnostics (samplers/diagnostics.hpp), bound here too.
#include "ebm/energy.hpp"
#include "python/src/common.hpp"
#include "samplers/adaptive_mala.hpp"
#include "samplers/diagnostics.hpp"
#include "samplers/hmc.hpp"
#include "samplers/langevin.hpp"
#include "samplers/mala.hpp"
#include "samplers/nuts.hpp"
#include "samplers/tempering.hpp"

namespace ebl::py_bind {

namespace {

template <class T>
using EPtr = std::shared_ptr<Energy<T>>;

template <class T>
EnergyFn<T> fn_of(EPtr<T> e) {
  return [e](Tape<T>& t, Var<T> x) { return (*e)(t, x); };
}

// What run() records per draw: nothing, each chain's energy, or each chain's state.
template <class T>
struct Trace {
  enum Kind { None, Energy, State } kind = None;
  std::vector<std::vector<double>> energies;  // chains × draws
  std::vector<std::vector<double>> states;    // chains × (draws · d)
  std::size_t d = 0;

  explicit Trace(const std::optional<std::string>& what) {
    if (!what) return;
    if (*what == "energy")
      kind = Energy;
    else if (*what == "x")
      kind = State;
    else
      throw std::invalid_argument("trace: expected None, 'energy' or 'x', got '" + *what + "'");
  }
  Observer<T> observer() {
    if (kind == None) return {};
    return [this](const Array<T>& x, const Array<T>& e) {
      const std::size_t n = x.shape()[0];
      d = n ? x.size() / n : 0;
      auto& rows = kind == Energy ? energies : states;
      if (rows.size() != n) rows.assign(n, {});
      for (std::size_t i = 0; i < n; ++i) {
        if (kind == Energy)
          rows[i].push_back(double(e.data()[i]));
        else
          rows[i].insert(rows[i].end(), x.data() + i * d, x.data() + (i + 1) * d);
      }
    };
  }
  py::object result() const {
    if (kind == Energy) return to_numpy(energies);
    if (kind == State) {
      const std::size_t n = states.size(), draws = n && d ? states[0].size() / d : 0;
      py::array_t<double> out({py::ssize_t(n), py::ssize_t(draws), py::ssize_t(d)});
      for (std::size_t i = 0; i < n; ++i)
        std::copy(states[i].begin(), states[i].end(), out.mutable_data(py::ssize_t(i), 0, 0));
      return out;
    }
    return py::none();
  }
};

// A sampler with the energy it samples, and run(x, rng, trace) -> (x, stats[, trace]).
template <class T, class S>
struct Sampler {
  EPtr<T> energy;
  S s;
  Array<T> x;
  template <class... A>
  Sampler(EPtr<T> e, A&&... args) : energy(std::move(e)), s(std::forward<A>(args)...) {}
};

template <class T, class S, class Cls>
void def_run(Cls& cls) {
  cls.def(
      "run",
      [](Sampler<T, S>& smp, const NpIn<T>& x0, Rng& rng, std::optional<std::string> trace) {
        to_array<T>(x0, smp.x);
        if (smp.x.dimension() != 2)
          throw ShapeError("run: x must be a batch of chains [n, d], got " +
                           shape_str(smp.x.shape()));
        Trace<T> tr(trace);
        ChainStats stats = long_call([&] { return smp.s.run(smp.x, rng, tr.observer()); });
        if (tr.kind == Trace<T>::None) return py::make_tuple(to_numpy(smp.x), stats);
        return py::make_tuple(to_numpy(smp.x), stats, tr.result());
      },
      py::arg("x"), py::arg("rng"), py::arg("trace") = py::none(),
      R"(Runs the chains x [n, d] (rows are independent chains) from a copy of x. Returns
(x_new, ChainStats), or (x_new, ChainStats, traces) with trace="energy" ([chains, draws]) or
trace="x" ([chains, draws, d]).)");
}

AdaptOptions adapt_options(int warmup, double target, bool step, bool metric) {
  AdaptOptions a;
  a.warmup = warmup;
  a.target_accept = target;
  a.adapt_step_size = step;
  a.adapt_metric = metric;
  return a;
}

template <class T>
void bind_for(py::module_& m) {
  {
    using S = Sampler<T, Langevin<T>>;
    const LangevinOptions d{};
    auto cls = py::class_<S, std::shared_ptr<S>>(
        m, typed<T>("Langevin").c_str(),
        R"(Unadjusted Langevin dynamics: x <- x - eps grad E(x) + sqrt(2 eps T) xi. Biased at finite
step (MALA is not). schedule "constant", "linear" or "geometric" from step_size to
final_step_size; clamp=(lo, hi) clamps x after each step; threads > 1 splits the chains.)");
    cls.def(py::init([](EPtr<T> e, int steps, double step_size, double temperature, double clip,
                        std::optional<std::pair<double, double>> clamp, const std::string& sched,
                        double final_step, int threads, bool trace_energies) {
              LangevinOptions o;
              o.steps = steps, o.step_size = step_size, o.temperature = temperature;
              o.grad_clip = clip, o.threads = threads, o.trace_energies = trace_energies;
              if (clamp) o.clamp = true, o.lo = clamp->first, o.hi = clamp->second;
              if (sched == "constant")
                o.schedule = StepSchedule::Constant;
              else if (sched == "linear")
                o.schedule = StepSchedule::Linear;
              else if (sched == "geometric")
                o.schedule = StepSchedule::Geometric;
              else
                throw std::invalid_argument("Langevin: unknown schedule '" + sched + "'");
              o.final_step_size = final_step;
              return std::make_shared<S>(e, fn_of<T>(e), o);
            }),
            py::arg("energy"), py::arg("steps") = d.steps, py::arg("step_size") = d.step_size,
            py::arg("temperature") = d.temperature, py::arg("grad_clip") = d.grad_clip,
            py::arg("clamp") = py::none(), py::arg("schedule") = "constant",
            py::arg("final_step_size") = d.final_step_size, py::arg("threads") = d.threads,
            py::arg("trace_energies") = d.trace_energies);
    def_run<T, Langevin<T>>(cls);
  }
  {
    using S = Sampler<T, Mala<T>>;
    const MalaOptions d{};
    auto cls = py::class_<S, std::shared_ptr<S>>(m, typed<T>("MALA").c_str(),
                                                 "Metropolis-adjusted Langevin: the Langevin step "
                                                 "as a proposal, accepted by Metropolis-Hastings.");
    cls.def(
        py::init([](EPtr<T> e, int steps, double step_size, double temperature) {
          return std::make_shared<S>(e, fn_of<T>(e), MalaOptions{steps, step_size, temperature});
        }),
        py::arg("energy"), py::arg("steps") = d.steps, py::arg("step_size") = d.step_size,
        py::arg("temperature") = d.temperature);
    def_run<T, Mala<T>>(cls);
  }
  {
    using S = Sampler<T, Hmc<T>>;
    const HmcOptions d{};
    auto cls = py::class_<S, std::shared_ptr<S>>(
        m, typed<T>("HMC").c_str(),
        "Hamiltonian Monte Carlo: L leapfrog steps of size eps, then a Metropolis correction.");
    cls.def(py::init([](EPtr<T> e, int steps, int leapfrog, double step_size, double temperature) {
              return std::make_shared<S>(e, fn_of<T>(e),
                                         HmcOptions{steps, leapfrog, step_size, temperature});
            }),
            py::arg("energy"), py::arg("steps") = d.steps,
            py::arg("leapfrog_steps") = d.leapfrog_steps, py::arg("step_size") = d.step_size,
            py::arg("temperature") = d.temperature);
    def_run<T, Hmc<T>>(cls);
  }
  const AdaptOptions ad{};
  {
    using S = Sampler<T, Nuts<T>>;
    const NutsOptions d{};
    auto cls = py::class_<S, std::shared_ptr<S>>(
        m, typed<T>("NUTS").c_str(),
        R"(The No-U-Turn Sampler (multinomial, generalised U-turn criterion, Stan's warm-up: dual
averaging of the step size to target_accept (0: 0.8) and a diagonal metric in windows). The chains
advance in lockstep, one batched evaluation per leapfrog step.)");
    cls.def(py::init([](EPtr<T> e, int steps, double step_size, double temperature, int max_depth,
                        int warmup, double target, bool adapt_step, bool adapt_metric) {
              NutsOptions o;
              o.steps = steps, o.step_size = step_size, o.temperature = temperature;
              o.max_depth = max_depth;
              o.adapt = adapt_options(warmup, target, adapt_step, adapt_metric);
              return std::make_shared<S>(e, fn_of<T>(e), o);
            }),
            py::arg("energy"), py::arg("steps") = d.steps, py::arg("step_size") = d.step_size,
            py::arg("temperature") = d.temperature, py::arg("max_depth") = d.max_depth,
            py::arg("warmup") = ad.warmup, py::arg("target_accept") = ad.target_accept,
            py::arg("adapt_step_size") = ad.adapt_step_size,
            py::arg("adapt_metric") = ad.adapt_metric);
    def_run<T, Nuts<T>>(cls);
    cls.def_property_readonly("adaptation", [](S& s) { return s.s.adaptation(); })
        .def_property_readonly("depth_histogram", [](S& s) { return s.s.depth_histogram(); })
        .def_property_readonly("mean_leapfrog_steps",
                               [](S& s) { return s.s.mean_leapfrog_steps(); })
        .def_property_readonly("divergences", [](S& s) { return s.s.divergences(); });
  }
  {
    using S = Sampler<T, AdaptiveMala<T>>;
    const AdaptiveMalaOptions d{};
    auto cls = py::class_<S, std::shared_ptr<S>>(
        m, typed<T>("AdaptiveMALA").c_str(),
        "MALA with Stan's warm-up: step size to target_accept (0: 0.574) and a diagonal metric.");
    cls.def(py::init([](EPtr<T> e, int steps, double step_size, double temperature, int warmup,
                        double target, bool adapt_step, bool adapt_metric) {
              AdaptiveMalaOptions o;
              o.steps = steps, o.step_size = step_size, o.temperature = temperature;
              o.adapt = adapt_options(warmup, target, adapt_step, adapt_metric);
              return std::make_shared<S>(e, fn_of<T>(e), o);
            }),
            py::arg("energy"), py::arg("steps") = d.steps, py::arg("step_size") = d.step_size,
            py::arg("temperature") = d.temperature, py::arg("warmup") = ad.warmup,
            py::arg("target_accept") = ad.target_accept,
            py::arg("adapt_step_size") = ad.adapt_step_size,
            py::arg("adapt_metric") = ad.adapt_metric);
    def_run<T, AdaptiveMala<T>>(cls);
    cls.def_property_readonly("adaptation", [](S& s) { return s.s.adaptation(); });
  }
  {
    using S = Sampler<T, ParallelTempering<T>>;
    const TemperingOptions d{};
    auto cls = py::class_<S, std::shared_ptr<S>>(
        m, typed<T>("ParallelTempering").c_str(),
        R"(Parallel tempering: a MALA move at every level of a temperature ladder, then swaps
between neighbours (even/odd). x is the T1 level; the hotter levels persist between runs.
temperatures default to geometric_ladder(8, 30).)");
    cls.def(py::init([](EPtr<T> e, int steps, std::vector<double> temps, double step_size,
                        std::vector<double> step_sizes) {
              TemperingOptions o;
              o.steps = steps, o.temperatures = std::move(temps), o.step_size = step_size;
              o.step_sizes = std::move(step_sizes);
              return std::make_shared<S>(e, fn_of<T>(e), o);
            }),
            py::arg("energy"), py::arg("steps") = d.steps,
            py::arg("temperatures") = std::vector<double>{}, py::arg("step_size") = d.step_size,
            py::arg("step_sizes") = std::vector<double>{});
    def_run<T, ParallelTempering<T>>(cls);
    cls.def_property_readonly("temperatures", [](S& s) { return s.s.temperatures(); });
  }
}

}  // namespace

void bind_samplers(py::module_& m) {
  py::class_<ChainStats>(m, "ChainStats", "Diagnostics of one sampler run.")
      .def_property_readonly(
          "mean_energy", [](const ChainStats& s) { return to_numpy(s.mean_energy); },
          "per step: the mean energy over the chains")
      .def_property_readonly(
          "mean_grad_norm", [](const ChainStats& s) { return to_numpy(s.mean_grad_norm); },
          "per step: the mean ||grad_x E|| over the chains")
      .def_readonly("acceptance", &ChainStats::acceptance, "the acceptance rate (1 for Langevin)")
      .def_readonly("proposals", &ChainStats::proposals)
      .def_readonly("accepted", &ChainStats::accepted)
      .def_readonly("gradient_evals", &ChainStats::gradient_evals,
                    "evaluations of E and grad_x E per chain: the cost ESS is divided by")
      .def_property_readonly(
          "energy_traces", [](const ChainStats& s) { return to_numpy(s.energy_traces); },
          "Langevin with trace_energies: E of every chain at every step");
  py::class_<Adaptation>(m, "Adaptation", "What an adaptive sampler chose in warm-up.")
      .def_readonly("step_size", &Adaptation::step_size)
      .def_readonly("inverse_metric", &Adaptation::inverse_metric)
      .def_readonly("warmup_acceptance", &Adaptation::warmup_acceptance)
      .def_readonly("target_accept", &Adaptation::target_accept);
  m.def("geometric_ladder", &geometric_ladder, py::arg("levels"), py::arg("t_max"),
        "k temperatures from 1 to t_max, evenly spaced in log.");

  bind_for<float>(m);
  bind_for<double>(m);

  // diagnostics on [chains, draws] arrays (Vehtari, Gelman, Simpson, Carpenter, Bürkner 2021)
  auto diag = [&](const char* name, double (*f)(const Traces&), const char* doc) {
    m.def(
        name, [f](const NpIn<double>& a) { return f(to_traces(a)); }, py::arg("traces"), doc);
  };
  diag("ess_basic", &ess_basic,
       "ESS of the draws as they are (Geyer's initial monotone sequence over the chains).");
  diag("bulk_ess", &bulk_ess, "Bulk-ESS: ESS of the rank-normalised split chains.");
  diag("tail_ess", &tail_ess, "Tail-ESS: the smaller ESS of the 5% and 95% quantile indicators.");
  diag("effective_sample_size", &effective_sample_size, "= bulk_ess.");
  diag("split_rhat", &split_rhat,
       "Rank-normalised split-R-hat, the larger of the bulk and the folded (tail) one.");
  m.def(
      "autocorrelation",
      [](const NpIn<double>& a, std::size_t lag) { return autocorrelation(to_traces(a), lag); },
      py::arg("traces"), py::arg("max_lag"), "The chains' mean autocorrelation up to max_lag.");
}

}  // namespace ebl::py_bind
