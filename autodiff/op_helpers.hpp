// What the op files (ops*.cpp) share: finding the tape of an op's inputs, with errors naming the
// op. Internal to the implementation of ops; users write ops with Tape::push (see ops.hpp).
#pragma once

#include <stdexcept>

#include <fmt/format.h>

#include "autodiff/tape.hpp"

namespace ebl::op_detail {

template <class T>
Tape<T>& tape_of(const char* op, Var<T> a) {
  if (!a.tape) throw std::invalid_argument(fmt::format("{}: variable is not on a tape", op));
  return *a.tape;
}

template <class T>
Tape<T>& tape_of(const char* op, Var<T> a, Var<T> b) {
  Tape<T>& t = tape_of(op, a);
  if (b.tape != a.tape)
    throw std::invalid_argument(fmt::format("{}: inputs are on different tapes", op));
  return t;
}

}  // namespace ebl::op_detail
