// What every binding file shares: numpy arrays in and out of the library's arrays, tapes and
// variables as Python sees them, and the wrapper that runs a long call without the GIL and lets
// Ctrl-C interrupt it.
#pragma once

#include <csignal>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "autodiff/array.hpp"
#include "autodiff/interrupt.hpp"
#include "autodiff/tape.hpp"

namespace ebl::py_bind {

namespace py = pybind11;

/// "float32" / "float64": the suffix of the classes bound for T and the numpy dtype's name.
template <class T>
constexpr const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}
/// `name` + "_" + dtype: the class bound for T (the Python package picks it by dtype).
template <class T>
std::string typed(const char* name) {
  return std::string(name) + "_" + dtype_name<T>();
}

/// A numpy array of any real dtype, converted to T and C order if it is not already.
template <class T>
using NpIn = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <class T>
Array<T> to_array(const NpIn<T>& a) {
  Shape s;
  for (py::ssize_t k = 0; k < a.ndim(); ++k) s.push_back(std::size_t(a.shape(k)));
  Array<T> out = Array<T>::from_shape(s);
  std::copy_n(a.data(), out.size(), out.data());
  return out;
}
/// Into an existing array, resized only if its shape changes (the samplers' reused buffers).
template <class T>
void to_array(const NpIn<T>& a, Array<T>& out) {
  Shape s;
  for (py::ssize_t k = 0; k < a.ndim(); ++k) s.push_back(std::size_t(a.shape(k)));
  if (out.shape() != s) out.resize(s);
  std::copy_n(a.data(), out.size(), out.data());
}
/// A new numpy array holding a copy of a.
template <class T>
py::array_t<T> to_numpy(const Array<T>& a) {
  std::vector<py::ssize_t> shape(a.shape().begin(), a.shape().end());
  py::array_t<T> out(shape);
  std::copy_n(a.data(), a.size(), out.mutable_data());
  return out;
}
inline py::array_t<double> to_numpy(const std::vector<double>& v) {
  py::array_t<double> out{py::ssize_t(v.size())};
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}
/// Labels from an integer array, refused if negative.
inline std::vector<std::size_t> labels_of(
    const py::array_t<long long, py::array::c_style | py::array::forcecast>& y) {
  std::vector<std::size_t> out;
  out.reserve(std::size_t(y.size()));
  for (py::ssize_t i = 0; i < y.size(); ++i) {
    if (y.data()[i] < 0) throw std::invalid_argument("labels must be >= 0");
    out.push_back(std::size_t(y.data()[i]));
  }
  return out;
}
/// chains × draws traces as a [chains, draws] array (rows of equal length).
inline py::array_t<double> to_numpy(const std::vector<std::vector<double>>& v) {
  const std::size_t m = v.size(), n = m ? v[0].size() : 0;
  py::array_t<double> out({py::ssize_t(m), py::ssize_t(n)});
  for (std::size_t i = 0; i < m; ++i) std::copy(v[i].begin(), v[i].end(), out.mutable_data(i, 0));
  return out;
}
/// A [chains, draws] array as traces.
inline std::vector<std::vector<double>> to_traces(const NpIn<double>& a) {
  if (a.ndim() != 2)
    throw std::invalid_argument("diagnostics: traces must be a [chains, draws] array");
  std::vector<std::vector<double>> t(std::size_t(a.shape(0)));
  for (std::size_t i = 0; i < t.size(); ++i)
    t[i].assign(a.data(py::ssize_t(i), 0), a.data(py::ssize_t(i), 0) + a.shape(1));
  return t;
}

// ---- tapes and variables ----------------------------------------------------------------------
// A Var is a tape's address and a node index. Python may keep one longer than its tape or across
// a clear(); so each tape seen from Python has an Epoch that its Vars share: clear() advances
// it, and a tape that goes away (or a library tape lent to a callback that has returned) marks it
// dead. Using a stale Var is then a Python error, not a read of freed memory.
struct Epoch {
  std::uint64_t generation = 0;
  bool alive = true;
};

template <class T>
struct PyTape {
  std::unique_ptr<Tape<T>> owned;  // a tape made from Python; empty for a lent library tape
  Tape<T>* tape = nullptr;
  std::shared_ptr<Epoch> epoch = std::make_shared<Epoch>();

  PyTape() : owned(std::make_unique<Tape<T>>()), tape(owned.get()) {}
  explicit PyTape(Tape<T>& lent) : tape(&lent) {}
  ~PyTape() { epoch->alive = false; }
  PyTape(const PyTape&) = delete;
  PyTape& operator=(const PyTape&) = delete;
  void clear() {
    tape->clear();
    ++epoch->generation;
  }
};

template <class T>
struct PyVar {
  Var<T> v;
  std::shared_ptr<Epoch> epoch;
  std::uint64_t generation = 0;

  /// The variable, if its tape still holds it.
  Var<T> get() const {
    if (!epoch || !epoch->alive)
      throw std::invalid_argument("this variable's tape no longer exists");
    if (epoch->generation != generation)
      throw std::invalid_argument("this variable's tape was cleared since it was made");
    return v;
  }
  /// A result on the same tape.
  PyVar wrap(Var<T> r) const { return {r, epoch, generation}; }
};

/// A lent tape (a callback's argument) as Python sees it: valid until the callback returns.
template <class T>
struct LentTape {
  std::shared_ptr<PyTape<T>> handle;
  explicit LentTape(Tape<T>& t) : handle(std::make_shared<PyTape<T>>(t)) {}
  ~LentTape() { handle->epoch->alive = false; }
  PyVar<T> var(Var<T> v) const { return {v, handle->epoch, handle->epoch->generation}; }
};

// ---- long calls ---------------------------------------------------------------------------------
// A call that may run for long releases the GIL (other Python threads run meanwhile) and replaces
// SIGINT's handler by one that requests an interruption (autodiff/interrupt.hpp): the library's
// loops poll it once per iteration and unwind with Interrupted, which becomes Python's
// KeyboardInterrupt (through the Python-level SIGINT handler, so a custom handler still runs).
// Callbacks into Python (an energy written in Python) take the GIL back for their duration.
class LongCall {
 public:
  LongCall();
  ~LongCall();
  LongCall(const LongCall&) = delete;
  LongCall& operator=(const LongCall&) = delete;

 private:
  PyOS_sighandler_t previous_ = nullptr;
  bool installed_ = false;
  std::unique_ptr<py::gil_scoped_release> release_;
};

/// Turns Interrupted into the Python exception SIGINT raises (KeyboardInterrupt by default).
[[noreturn]] void raise_interrupted();

template <class F>
auto long_call(F&& f) {
  try {
    LongCall scope;
    return f();
  } catch (const Interrupted&) {
    raise_interrupted();
  }
}

}  // namespace ebl::py_bind
