// The tape from Python: Tape, Var (with Python's arithmetic operators), Parameter, every op of the
// op table (autodiff/ops.hpp) as a module function, gradients of gradients
// (autodiff/higher_order.hpp) and the gradient checkers. Each is bound for float32 and float64;
// the two dtypes' functions share their names, and Python picks the one whose Var it is given.
#include "autodiff/gradcheck.hpp"
#include "autodiff/higher_order.hpp"
#include "autodiff/ops.hpp"
#include "python/src/common.hpp"

namespace ebl::py_bind {

namespace {

template <class T>
using PV = PyVar<T>;

// Shapes and index lists from Python sequences.
std::vector<std::ptrdiff_t> signed_list(const std::vector<long long>& v) {
  return {v.begin(), v.end()};
}
std::vector<std::size_t> index_list(const std::vector<long long>& v, const char* op) {
  std::vector<std::size_t> out;
  out.reserve(v.size());
  for (long long i : v) {
    if (i < 0) throw std::invalid_argument(std::string(op) + ": indices must be >= 0");
    out.push_back(std::size_t(i));
  }
  return out;
}

template <class T>
std::vector<Var<T>> unwrap(const std::vector<PV<T>>& vs) {
  std::vector<Var<T>> out;
  out.reserve(vs.size());
  for (const auto& v : vs) out.push_back(v.get());
  return out;
}

template <class T>
void bind_for(py::module_& m) {
  const std::string dt = dtype_name<T>();

  py::class_<Parameter<T>>(
      m, typed<T>("Parameter").c_str(),
      R"(A model parameter: a named array that persists across tapes, with the gradient
that backward passes add into. Put it on a tape with tape.param(p).)")
      .def(py::init([](std::string name, const NpIn<T>& value) {
             return new Parameter<T>(std::move(name), to_array<T>(value));
           }),
           py::arg("name"), py::arg("value"))
      .def_readonly("name", &Parameter<T>::name)
      .def_property(
          "value", [](const Parameter<T>& p) { return to_numpy(p.value); },
          [](Parameter<T>& p, const NpIn<T>& v) {
            Array<T> a = to_array<T>(v);
            if (a.shape() != p.value.shape())
              throw ShapeError("Parameter '" + p.name + "': value " + shape_str(a.shape()) +
                               " does not match its shape " + shape_str(p.value.shape()));
            p.value = std::move(a);
          },
          "A copy of the value; assigning an array of the same shape sets it.")
      .def_property_readonly(
          "grad", [](const Parameter<T>& p) { return to_numpy(p.grad); },
          "A copy of the accumulated gradient.")
      .def_property_readonly("shape",
                             [](const Parameter<T>& p) {
                               return std::vector<std::size_t>(p.value.shape().begin(),
                                                               p.value.shape().end());
                             })
      .def_property_readonly("dtype", [dt](const Parameter<T>&) { return dt; })
      .def("zero_grad", &Parameter<T>::zero_grad)
      .def("__repr__", [dt](const Parameter<T>& p) {
        return "Parameter('" + p.name + "', shape=" + shape_str(p.value.shape()) + ", " + dt + ")";
      });

  using Tp = PyTape<T>;
  py::class_<Tp, std::shared_ptr<Tp>>(
      m, typed<T>("Tape").c_str(),
      R"(A reverse-mode tape: records every op as a node, in creation order; backward is one
reverse loop over the nodes. clear() forgets the nodes (Vars made before it become invalid) and
keeps their memory for the next graph.)")
      .def(py::init<>())
      .def(
          "input",
          [](Tp& t, const NpIn<T>& x, bool requires_grad) {
            return PV<T>{t.tape->input(to_array<T>(x), requires_grad), t.epoch,
                         t.epoch->generation};
          },
          py::arg("x"), py::arg("requires_grad") = false,
          "An input leaf: x copied onto the tape (with a gradient if requires_grad).")
      .def(
          "constant",
          [](Tp& t, const NpIn<T>& x) {
            return PV<T>{t.tape->constant(to_array<T>(x)), t.epoch, t.epoch->generation};
          },
          py::arg("x"))
      .def(
          "scalar",
          [](Tp& t, double v) {
            return PV<T>{t.tape->scalar(T(v)), t.epoch, t.epoch->generation};
          },
          py::arg("value"))
      .def(
          "param",
          [](Tp& t, Parameter<T>& p) {
            return PV<T>{t.tape->param(p), t.epoch, t.epoch->generation};
          },
          py::arg("p"), py::keep_alive<1, 2>(),
          "A parameter leaf: reads p.value in place; backward adds into p.grad.")
      .def(
          "backward",
          [](Tp& t, const PV<T>& y, const std::vector<PV<T>>& wrt,
             const std::vector<Parameter<T>*>& params) {
            Var<T> yv = y.get();
            if (yv.tape != t.tape) throw std::invalid_argument("backward: y is not on this tape");
            if (wrt.empty() && params.empty()) return t.tape->backward(yv);
            std::vector<Var<T>> w = unwrap(wrt);
            t.tape->backward(yv, std::span<const Var<T>>(w),
                             std::span<Parameter<T>* const>(params));
          },
          py::arg("y"), py::arg("wrt") = std::vector<PV<T>>{},
          py::arg("params") = std::vector<Parameter<T>*>{},
          R"(Gradients of the one-element y. With neither wrt nor params: every leaf that wants one
(every parameter, every input made with requires_grad). Otherwise exactly the given leaves and
parameters; nothing else is computed. Parameters' gradients are added into p.grad.)")
      .def(
          "grad", [](Tp& t, const PV<T>& leaf) { return to_numpy(t.tape->grad(leaf.get())); },
          py::arg("leaf"), "dy/dleaf from the last backward pass (a copy).")
      .def("clear", &Tp::clear)
      .def("__len__", [](const Tp& t) { return t.tape->size(); })
      .def(
          "set_threads", [](Tp& t, std::size_t n) { t.tape->set_threads(n); }, py::arg("n"),
          "Threads for ops that split their work by rows (1: the calling thread only).")
      .def_property(
          "params_frozen", [](const Tp& t) { return t.tape->params_frozen(); },
          [](Tp& t, bool f) { t.tape->set_params_frozen(f); },
          "While True, param(p) records p's value as a constant (no gradient flows to p).")
      .def_property_readonly("dtype", [dt](const Tp&) { return dt; });

  auto var = py::class_<PV<T>>(m, typed<T>("Var").c_str(),
                               "A node of a tape. Arithmetic operators build new nodes.");
  var.def_property_readonly(
         "value", [](const PV<T>& v) { return to_numpy(v.get().value()); }, "A copy of the value.")
      .def_property_readonly("shape",
                             [](const PV<T>& v) {
                               const Shape& s = v.get().shape();
                               return std::vector<std::size_t>(s.begin(), s.end());
                             })
      .def("item",
           [](const PV<T>& v) {
             Var<T> x = v.get();
             if (x.size() != 1)
               throw ShapeError("item: the variable has shape " + shape_str(x.shape()) +
                                ", not one element");
             return double(x.item());
           })
      .def_property_readonly("dtype", [dt](const PV<T>&) { return dt; })
      .def("__repr__", [dt](const PV<T>& v) {
        return "Var(shape=" + shape_str(v.get().shape()) + ", " + dt + ")";
      });

  // Python's operators, with Vars or scalars on either side
  auto bin = [](auto f) {
    return [f](const PV<T>& a, const PV<T>& b) { return a.wrap(f(a.get(), b.get())); };
  };
  var.def("__add__", bin([](Var<T> a, Var<T> b) { return a + b; }), py::is_operator())
      .def("__sub__", bin([](Var<T> a, Var<T> b) { return a - b; }), py::is_operator())
      .def("__mul__", bin([](Var<T> a, Var<T> b) { return a * b; }), py::is_operator())
      .def("__truediv__", bin([](Var<T> a, Var<T> b) { return a / b; }), py::is_operator())
      .def("__matmul__", bin([](Var<T> a, Var<T> b) { return matmul(a, b); }), py::is_operator())
      .def("__neg__", [](const PV<T>& a) { return a.wrap(-a.get()); })
      .def(
          "__add__", [](const PV<T>& a, double s) { return a.wrap(a.get() + T(s)); },
          py::is_operator())
      .def(
          "__radd__", [](const PV<T>& a, double s) { return a.wrap(T(s) + a.get()); },
          py::is_operator())
      .def(
          "__sub__", [](const PV<T>& a, double s) { return a.wrap(a.get() - T(s)); },
          py::is_operator())
      .def(
          "__rsub__", [](const PV<T>& a, double s) { return a.wrap(T(s) - a.get()); },
          py::is_operator())
      .def(
          "__mul__", [](const PV<T>& a, double s) { return a.wrap(a.get() * T(s)); },
          py::is_operator())
      .def(
          "__rmul__", [](const PV<T>& a, double s) { return a.wrap(T(s) * a.get()); },
          py::is_operator())
      .def(
          "__truediv__", [](const PV<T>& a, double s) { return a.wrap(a.get() / T(s)); },
          py::is_operator())
      .def(
          "__rtruediv__", [](const PV<T>& a, double s) { return a.wrap(T(s) / a.get()); },
          py::is_operator())
      .def(
          "__pow__", [](const PV<T>& a, double p) { return a.wrap(pow(a.get(), T(p))); },
          py::is_operator());

  // ---- the op table -----------------------------------------------------------------------------
  auto un = [&](const char* name, Var<T> (*f)(Var<T>), const char* doc) {
    m.def(
        name, [f](const PV<T>& a) { return a.wrap(f(a.get())); }, py::arg("a"), doc);
  };
  un("neg", &neg<T>, "-a");
  un("exp", &exp<T>, "e^a");
  un("log", &log<T>, "ln a");
  un("sqrt", &sqrt<T>, "sqrt(a)");
  un("square", &square<T>, "a^2");
  un("abs", &abs<T>, "|a| (gradient 0 at 0)");
  un("relu", &relu<T>, "max(a, 0)");
  un("sigmoid", &sigmoid<T>, "1 / (1 + e^-a)");
  un("tanh", &tanh<T>, "tanh a");
  un("softplus", &softplus<T>, "ln(1 + e^a)");
  un("silu", &silu<T>, "a sigmoid(a)");
  un("transpose", &transpose<T>, "a^T (2-D)");
  auto two = [&](const char* name, Var<T> (*f)(Var<T>, Var<T>), const char* doc) {
    m.def(
        name, [f](const PV<T>& a, const PV<T>& b) { return a.wrap(f(a.get(), b.get())); },
        py::arg("a"), py::arg("b"), doc);
  };
  two("add", &add<T>, "a + b (numpy broadcasting)");
  two("sub", &sub<T>, "a - b");
  two("mul", &mul<T>, "a * b");
  two("div", &div<T>, "a / b");
  m.def(
      "affine",
      [](const PV<T>& a, double s, double t) { return a.wrap(affine(a.get(), T(s), T(t))); },
      py::arg("a"), py::arg("scale"), py::arg("shift"), "scale * a + shift");
  m.def(
      "rdiv", [](double s, const PV<T>& a) { return a.wrap(rdiv(T(s), a.get())); }, py::arg("s"),
      py::arg("a"), "s / a");
  m.def(
      "pow", [](const PV<T>& a, double p) { return a.wrap(pow(a.get(), T(p))); }, py::arg("a"),
      py::arg("p"), "a^p for a scalar p");
  m.def(
      "leaky_relu", [](const PV<T>& a, double s) { return a.wrap(leaky_relu(a.get(), T(s))); },
      py::arg("a"), py::arg("slope") = 0.01);
  m.def(
      "clamp",
      [](const PV<T>& a, double lo, double hi) { return a.wrap(clamp(a.get(), T(lo), T(hi))); },
      py::arg("a"), py::arg("lo"), py::arg("hi"));
  m.def(
      "matmul",
      [](const PV<T>& a, const PV<T>& b, bool ta, bool tb) {
        return a.wrap(matmul(a.get(), b.get(), ta, tb));
      },
      py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false,
      "op(a) op(b), op = transpose where flagged");
  m.def(
      "linear",
      [](const PV<T>& x, const PV<T>& w, const PV<T>& b) {
        return x.wrap(linear(x.get(), w.get(), b.get()));
      },
      py::arg("x"), py::arg("w"), py::arg("b"), "x W + b (x [n, i], W [i, o], b [o])");
  m.def(
      "bmm",
      [](const PV<T>& a, const PV<T>& b, bool ta, bool tb) {
        return a.wrap(bmm(a.get(), b.get(), ta, tb));
      },
      py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false,
      "batched products y[p] = op(a[p]) op(b[p])");
  // reductions: over everything (axis=None) or one axis; mean also over several axes
  m.def(
      "sum",
      [](const PV<T>& a, std::optional<long long> axis, bool kd) {
        return a.wrap(axis ? sum(a.get(), std::ptrdiff_t(*axis), kd) : sum(a.get()));
      },
      py::arg("a"), py::arg("axis") = py::none(), py::arg("keepdims") = false);
  m.def(
      "mean",
      [](const PV<T>& a, std::optional<long long> axis, bool kd) {
        return a.wrap(axis ? mean(a.get(), std::ptrdiff_t(*axis), kd) : mean(a.get()));
      },
      py::arg("a"), py::arg("axis") = py::none(), py::arg("keepdims") = false);
  m.def(
      "mean",
      [](const PV<T>& a, const std::vector<long long>& axes, bool kd) {
        auto ax = signed_list(axes);
        return a.wrap(mean(a.get(), std::span<const std::ptrdiff_t>(ax), kd));
      },
      py::arg("a"), py::arg("axis"), py::arg("keepdims") = false);
  auto axis_op = [&](const char* name, Var<T> (*f)(Var<T>, std::ptrdiff_t, bool)) {
    m.def(
        name, [f](const PV<T>& a, long long axis, bool kd) { return a.wrap(f(a.get(), axis, kd)); },
        py::arg("a"), py::arg("axis"), py::arg("keepdims") = false);
  };
  axis_op("logsumexp", &logsumexp<T>);
  axis_op("max", &max<T>);
  axis_op("min", &min<T>);
  m.def(
      "log_softmax",
      [](const PV<T>& a, long long axis) { return a.wrap(log_softmax(a.get(), axis)); },
      py::arg("a"), py::arg("axis"));
  m.def(
      "softmax", [](const PV<T>& a, long long axis) { return a.wrap(softmax(a.get(), axis)); },
      py::arg("a"), py::arg("axis"));
  m.def(
      "reshape",
      [](const PV<T>& a, const std::vector<long long>& shape) {
        auto s = signed_list(shape);
        return a.wrap(reshape(a.get(), std::span<const std::ptrdiff_t>(s)));
      },
      py::arg("a"), py::arg("shape"), "same data, new shape (one -1 allowed)");
  m.def(
      "rows",
      [](const PV<T>& a, const std::vector<long long>& idx) {
        auto i = index_list(idx, "rows");
        return a.wrap(rows(a.get(), std::span<const std::size_t>(i)));
      },
      py::arg("a"), py::arg("idx"), "a[idx, :]");
  m.def(
      "cols",
      [](const PV<T>& a, const std::vector<long long>& idx) {
        auto i = index_list(idx, "cols");
        return a.wrap(cols(a.get(), std::span<const std::size_t>(i)));
      },
      py::arg("a"), py::arg("idx"), "a[:, idx]");
  m.def(
      "gather",
      [](const PV<T>& a, const std::vector<long long>& idx) {
        auto i = index_list(idx, "gather");
        return a.wrap(gather(a.get(), std::span<const std::size_t>(i)));
      },
      py::arg("a"), py::arg("idx"), "y[r] = a[r, idx[r]]");
  m.def(
      "permute",
      [](const PV<T>& a, const std::vector<long long>& axes) {
        auto i = index_list(axes, "permute");
        return a.wrap(permute(a.get(), std::span<const std::size_t>(i)));
      },
      py::arg("a"), py::arg("axes"), "numpy's transpose(a, axes)");
  m.def(
      "concat",
      [](const std::vector<PV<T>>& parts, long long axis) {
        if (parts.empty()) throw std::invalid_argument("concat: needs at least one part");
        auto ps = unwrap(parts);
        return parts[0].wrap(concat(std::span<const Var<T>>(ps), std::ptrdiff_t(axis)));
      },
      py::arg("parts"), py::arg("axis"));
  m.def(
      "conv2d",
      [](const PV<T>& x, const PV<T>& w, const PV<T>& b, std::size_t s, std::size_t p) {
        return x.wrap(conv2d(x.get(), w.get(), b.get(), s, p));
      },
      py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride") = 1, py::arg("padding") = 0,
      "2-D convolution (cross-correlation) on NCHW: x [n,c,h,w], w [o,c,kh,kw], b [o]");
  m.def(
      "avg_pool2d",
      [](const PV<T>& x, std::size_t k, std::size_t s) {
        return x.wrap(avg_pool2d(x.get(), k, s));
      },
      py::arg("x"), py::arg("kernel"), py::arg("stride") = 0,
      "average pooling (stride 0: = kernel)");
  m.def(
      "conv2d_input_grad",
      [](const PV<T>& gy, const PV<T>& w, std::size_t h, std::size_t wd, std::size_t s,
         std::size_t p) { return gy.wrap(conv2d_input_grad(gy.get(), w.get(), h, wd, s, p)); },
      py::arg("gy"), py::arg("w"), py::arg("h"), py::arg("width"), py::arg("stride"),
      py::arg("padding"));
  m.def(
      "conv2d_weight_grad",
      [](const PV<T>& x, const PV<T>& gy, std::size_t kh, std::size_t kw, std::size_t s,
         std::size_t p) { return x.wrap(conv2d_weight_grad(x.get(), gy.get(), kh, kw, s, p)); },
      py::arg("x"), py::arg("gy"), py::arg("kh"), py::arg("kw"), py::arg("stride"),
      py::arg("padding"));
  m.def(
      "avg_pool2d_grad",
      [](const PV<T>& gy, std::size_t h, std::size_t w, std::size_t k, std::size_t s) {
        return gy.wrap(avg_pool2d_grad(gy.get(), h, w, k, s));
      },
      py::arg("gy"), py::arg("h"), py::arg("w"), py::arg("kernel"), py::arg("stride"));

  // ---- gradients of gradients ---------------------------------------------------------------------
  m.def(
      "gradients",
      [](const PV<T>& y, const std::vector<PV<T>>& wrt) {
        auto w = unwrap(wrt);
        std::vector<PV<T>> out;
        for (Var<T> g : gradients(y.get(), std::span<const Var<T>>(w))) out.push_back(y.wrap(g));
        return out;
      },
      py::arg("y"), py::arg("wrt"),
      R"(dy/dx for every x in wrt, as Vars on y's tape (the backward pass recorded with
differentiable VJPs), so that they can be differentiated again. y must have one element.)");
  m.def(
      "grad_x", [](const PV<T>& e, const PV<T>& x) { return e.wrap(grad_x(e.get(), x.get())); },
      py::arg("energies"), py::arg("x"), "the score's negative, grad_x sum(E), recorded");
  m.def(
      "grad_norm_sq",
      [](const PV<T>& e, const PV<T>& x) { return e.wrap(grad_norm_sq(e.get(), x.get())); },
      py::arg("energies"), py::arg("x"), "per row ||grad_x E||^2, recorded");
  m.def(
      "hvp",
      [](const PV<T>& e, const PV<T>& x, const NpIn<T>& v) {
        return e.wrap(hvp(e.get(), x.get(), to_array<T>(v)));
      },
      py::arg("energies"), py::arg("x"), py::arg("v"), "Hessian-vector products per row, recorded");
  m.def(
      "laplacian",
      [](const PV<T>& e, const PV<T>& x) { return e.wrap(laplacian(e.get(), x.get())); },
      py::arg("energies"), py::arg("x"), "per row the exact trace of the Hessian, recorded");
}

}  // namespace

void bind_tape(py::module_& m) {
  bind_for<float>(m);
  bind_for<double>(m);

  py::class_<GradcheckReport>(
      m, "GradcheckReport",
      "The gradient check's verdict: elements checked, the worst element and its error/tolerance.")
      .def_readonly("ok", &GradcheckReport::ok)
      .def_readonly("checked", &GradcheckReport::checked)
      .def_readonly("worst_ratio", &GradcheckReport::worst_ratio)
      .def_readonly("worst_where", &GradcheckReport::worst_where)
      .def_readonly("analytic", &GradcheckReport::analytic)
      .def_readonly("numeric", &GradcheckReport::numeric)
      .def("__bool__", [](const GradcheckReport& r) { return r.ok; })
      .def("__repr__", &GradcheckReport::str);

  // f(tape, *vars) -> Var, on a float64 tape the checker makes (lent to f for the call)
  auto wrap_fn = [](py::function f) -> GradcheckFn {
    return [f](Tape<double>& t, std::span<const Var<double>> xs) {
      LentTape<double> lent(t);
      py::tuple args(xs.size() + 1);
      args[0] = py::cast(lent.handle);
      for (std::size_t k = 0; k < xs.size(); ++k) args[k + 1] = py::cast(lent.var(xs[k]));
      py::object r = f(*args);
      Var<double> y;
      try {
        y = r.cast<PyVar<double>>().get();
      } catch (const py::cast_error&) {
        throw std::invalid_argument("gradcheck: the function must return a float64 Var");
      }
      if (y.tape != &t)
        throw std::invalid_argument("gradcheck: the result is not on the given tape");
      return y;
    };
  };
  auto to_opts = [](double eps, double rtol, double atol, std::uint64_t seed) {
    GradcheckOptions o;
    o.eps = eps, o.rtol = rtol, o.atol = atol, o.seed = seed;
    return o;
  };
  m.def(
      "gradcheck",
      [wrap_fn, to_opts](py::function f, const std::vector<NpIn<double>>& inputs,
                         const std::vector<Parameter<double>*>& params, double eps, double rtol,
                         double atol, std::uint64_t seed) {
        std::vector<Array<double>> xs;
        for (const auto& a : inputs) xs.push_back(to_array<double>(a));
        return gradcheck(wrap_fn(f), std::move(xs), params, to_opts(eps, rtol, atol, seed));
      },
      py::arg("f"), py::arg("inputs"), py::arg("params") = std::vector<Parameter<double>*>{},
      py::arg("eps") = GradcheckOptions{}.eps, py::arg("rtol") = GradcheckOptions{}.rtol,
      py::arg("atol") = GradcheckOptions{}.atol, py::arg("seed") = GradcheckOptions{}.seed,
      R"(Checks the tape's gradients of f(tape, *vars) -> Var against central differences, in float64:
for L = sum(w * f(x)) with seeded random weights w, every element of every input (and of every
parameter in params) is compared. Returns a GradcheckReport (truthy when it passed).)");
  m.def(
      "second_order_gradcheck",
      [wrap_fn, to_opts](py::function f, const std::vector<NpIn<double>>& inputs, double eps,
                         double rtol, double atol, std::uint64_t seed) {
        std::vector<Array<double>> xs;
        for (const auto& a : inputs) xs.push_back(to_array<double>(a));
        return second_order_gradcheck(wrap_fn(f), std::move(xs), to_opts(eps, rtol, atol, seed));
      },
      py::arg("f"), py::arg("inputs"), py::arg("eps") = 1e-5, py::arg("rtol") = 1e-5,
      py::arg("atol") = 1e-7, py::arg("seed") = GradcheckOptions{}.seed,
      R"(Checks gradients of gradients: the recorded backward pass of f's gradient, differentiated
again, against central differences of first-order gradients (a Hessian-vector product).)");
}

}  // namespace ebl::py_bind
