// The Python module `ebl._ebl`: the library's classes and functions for float32 and float64
// (classes carry the dtype as a suffix; the package `ebl` chooses one by dtype). Bindings add no
// logic: each function here is a library function with numpy at its edges.
#include "python/src/common.hpp"

#include "autodiff/version.hpp"
#include "ebm/energy.hpp"
#include "io/files.hpp"

namespace ebl::py_bind {

void bind_tape(py::module_& m);
void bind_models(py::module_& m);
void bind_samplers(py::module_& m);
void bind_data(py::module_& m);
void bind_classic(py::module_& m);
void bind_deep(py::module_& m);

namespace {
std::size_t active_calls = 0;  // long calls in progress (changed with the GIL held)
PyOS_sighandler_t saved_handler = nullptr;
extern "C" void on_sigint(int) {
  request_interrupt();
}
}  // namespace

LongCall::LongCall() {
  // the first long call in progress installs the handler, the last one out restores Python's
  if (active_calls++ == 0) {
    clear_interrupt();
    saved_handler = PyOS_setsig(SIGINT, on_sigint);
  }
  installed_ = true;
  release_ = std::make_unique<py::gil_scoped_release>();
}

LongCall::~LongCall() {
  release_.reset();  // the GIL back first
  if (installed_ && --active_calls == 0) PyOS_setsig(SIGINT, saved_handler);
}

void raise_interrupted() {
  clear_interrupt();
  PyErr_SetInterrupt();  // as if SIGINT came now: Python's own handler decides what it means
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  PyErr_SetNone(PyExc_KeyboardInterrupt);  // a handler that ignored it: still, the call stopped
  throw py::error_already_set();
}

}  // namespace ebl::py_bind

PYBIND11_MODULE(_ebl, m) {
  namespace py = pybind11;
  using namespace ebl::py_bind;
  m.doc() = "Energy-based learning from first principles: the C++ library ebl, from Python.";
  m.attr("__version__") = ebl::kVersion;

  // the library's exceptions: shape errors are ValueErrors, a diverged run a RuntimeError, an
  // unreadable file an OSError; std::invalid_argument is a ValueError (pybind11's default)
  static py::exception<ebl::ShapeError> shape_error(m, "ShapeError", PyExc_ValueError);
  static py::exception<ebl::DivergenceError> divergence(m, "DivergenceError", PyExc_RuntimeError);
  static py::exception<ebl::IoError> io_error(m, "IoError", PyExc_OSError);
  shape_error.attr("__doc__") =
      "Arrays an op cannot combine; the message names the op and the shapes.";
  divergence.attr("__doc__") =
      "A training run whose loss or energies stopped being finite (raised before any state "
      "changes).";
  io_error.attr("__doc__") = "A file that cannot be read or written, or a corrupt checkpoint.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ebl::ShapeError& e) {
      PyErr_SetString(shape_error.ptr(), e.what());
    } catch (const ebl::DivergenceError& e) {
      PyErr_SetString(divergence.ptr(), e.what());
    } catch (const ebl::IoError& e) {
      PyErr_SetString(io_error.ptr(), e.what());
    } catch (const ebl::Interrupted&) {
      PyErr_SetNone(PyExc_KeyboardInterrupt);
    }
  });

  bind_tape(m);
  bind_models(m);
  bind_samplers(m);
  bind_data(m);
  bind_classic(m);
  bind_deep(m);
}
