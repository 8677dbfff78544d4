// Generators, datasets and metrics from Python: the library's generator (autodiff/random.hpp, the
// same streams as the C++ binaries), the toy 2-D sets with their exact densities
// (datasets/toy2d.hpp), MMD (metrics/mmd.hpp), calibration and AUROC (metrics/classification.hpp).
#include "autodiff/random.hpp"
#include "datasets/toy2d.hpp"
#include "metrics/classification.hpp"
#include "metrics/mmd.hpp"
#include "python/src/common.hpp"

namespace ebl::py_bind {

namespace {
// A shape for a new array, refused if its element count overflows or exceeds 2^40 (no allocator
// would grant it; std::vector's own message says nothing useful).
Shape checked_shape(const std::vector<std::size_t>& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) {
    if (d != 0 && n > (std::size_t(1) << 40) / d)
      throw std::invalid_argument("Rng: an array of shape " + shape_str(shape) + " is too large");
    n *= d;
  }
  return Shape(shape.begin(), shape.end());
}

template <class T>
void bind_for(py::module_& m) {
  m.def(
      typed<T>("toy2d_sample").c_str(),
      [](const std::string& name, std::size_t n, Rng& rng) {
        return to_numpy(toy2d::sample<T>(toy2d::dataset(name), n, rng));
      },
      py::arg("name"), py::arg("n"), py::arg("rng"));
  m.def(
      "toy2d_true_nll",
      [](const std::string& name, const NpIn<T>& x) {
        return toy2d::true_nll<T>(toy2d::dataset(name), to_array<T>(x));
      },
      py::arg("name"), py::arg("x"),
      "The data law's own NLL per sample, -mean log p(x_i) (None where the density is unknown).");
  m.def(
      "mmd2_unbiased",
      [](const NpIn<T>& x, const NpIn<T>& y, const std::vector<double>& bw) {
        Array<T> a = to_array<T>(x), b = to_array<T>(y);
        return long_call([&] { return mmd2_unbiased(a, b, bw); });
      },
      py::arg("x"), py::arg("y"), py::arg("bandwidths"),
      "Unbiased MMD^2 between samples x [n, d] and y [m, d], a sum of Gaussian kernels.");
}
}  // namespace

void bind_data(py::module_& m) {
  py::class_<Rng>(
      m, "Rng",
      R"(The library's generator (xoshiro256**, ziggurat normals): Rng(seed) gives the stream a C++
program seeded alike gets, so a Python run can share its numbers with a binary's.)")
      .def(py::init<std::uint64_t>(), py::arg("seed") = 0)
      .def(
          "uniform", [](Rng& r, double lo, double hi) { return r.uniform(lo, hi); },
          py::arg("lo") = 0.0, py::arg("hi") = 1.0)
      .def(
          "normal", [](Rng& r, double mean, double sd) { return r.normal(mean, sd); },
          py::arg("mean") = 0.0, py::arg("stddev") = 1.0)
      .def(
          "below",
          [](Rng& r, std::uint64_t n, std::optional<std::size_t> size) -> py::object {
            if (n == 0) throw std::invalid_argument("Rng.below: n must be > 0");
            if (!size) return py::int_(r.below(n));
            py::array_t<std::int64_t> out{py::ssize_t(*size)};
            for (std::size_t i = 0; i < *size; ++i)
              out.mutable_data()[i] = std::int64_t(r.below(n));
            return out;
          },
          py::arg("n"), py::arg("size") = py::none(),
          "A uniform integer in [0, n), or an array of `size` of them drawn in turn.")
      .def(
          "normal_array",
          [](Rng& r, const std::vector<std::size_t>& shape, double mean, double sd,
             const std::string& dt) -> py::object {
            const Shape s = checked_shape(shape);
            if (dt == "float32") return to_numpy(r.normal_array<float>(s, mean, sd));
            if (dt == "float64") return to_numpy(r.normal_array<double>(s, mean, sd));
            throw std::invalid_argument("dtype must be float32 or float64");
          },
          py::arg("shape"), py::arg("mean") = 0.0, py::arg("stddev") = 1.0,
          py::arg("dtype") = "float64")
      .def(
          "uniform_array",
          [](Rng& r, const std::vector<std::size_t>& shape, double lo, double hi,
             const std::string& dt) -> py::object {
            const Shape s = checked_shape(shape);
            if (dt == "float32") return to_numpy(r.uniform_array<float>(s, lo, hi));
            if (dt == "float64") return to_numpy(r.uniform_array<double>(s, lo, hi));
            throw std::invalid_argument("dtype must be float32 or float64");
          },
          py::arg("shape"), py::arg("lo") = 0.0, py::arg("hi") = 1.0, py::arg("dtype") = "float64")
      .def("split", &Rng::split, "A new generator seeded from this one's next number.")
      .def("jump", &Rng::jump, "Advance by 2^128 draws (independent streams).")
      .def_property(
          "state",
          [](const Rng& r) {
            auto st = r.state();
            return std::vector<std::uint64_t>(std::begin(st.s), std::end(st.s));
          },
          [](Rng& r, const std::vector<std::uint64_t>& s) {
            if (s.size() != 4) throw std::invalid_argument("Rng.state: four 64-bit words");
            Rng::State st;
            for (int k = 0; k < 4; ++k) st.s[k] = s[std::size_t(k)];
            r.set_state(st);
          },
          "The four words of the generator's state (settable; all-zero is refused).");

  m.def("toy2d_names", &toy2d::dataset_names, "The toy 2-D sets.");
  bind_for<float>(m);
  bind_for<double>(m);

  py::class_<CalibrationBin>(m, "CalibrationBin",
                             "One reliability bin [lo, hi): mean confidence, accuracy, count.")
      .def_readonly("lo", &CalibrationBin::lo)
      .def_readonly("hi", &CalibrationBin::hi)
      .def_readonly("confidence", &CalibrationBin::confidence)
      .def_readonly("accuracy", &CalibrationBin::accuracy)
      .def_readonly("count", &CalibrationBin::count);
  py::class_<Calibration>(m, "Calibration", "Expected and maximum calibration error, and the bins.")
      .def_readonly("ece", &Calibration::ece)
      .def_readonly("mce", &Calibration::mce)
      .def_readonly("bins", &Calibration::bins);
  m.def(
      "calibration",
      [](const NpIn<double>& conf,
         const py::array_t<bool, py::array::c_style | py::array::forcecast>& correct,
         std::size_t bins) {
        if (conf.size() != correct.size())
          throw ShapeError("calibration: confidences and correctness differ in length");
        std::vector<char> c(correct.data(), correct.data() + correct.size());
        return calibration(std::span<const double>(conf.data(), std::size_t(conf.size())),
                           std::span<const char>(c), bins);
      },
      py::arg("confidence"), py::arg("correct"), py::arg("bins") = 15,
      "Expected and maximum calibration error over equal-width confidence bins (np.histogram's).");
  py::class_<Auroc>(m, "Auroc", "The AUROC and its standard error.")
      .def_readonly("auroc", &Auroc::auroc)
      .def_readonly("std_err", &Auroc::std_err);
  m.def(
      "auroc",
      [](const NpIn<double>& in, const NpIn<double>& out) {
        return auroc(std::span<const double>(in.data(), std::size_t(in.size())),
                     std::span<const double>(out.data(), std::size_t(out.size())));
      },
      py::arg("in_scores"), py::arg("out_scores"),
      "AUROC of telling in from out by a higher score, with the Hanley-McNeil standard error.");
}

}  // namespace ebl::py_bind
