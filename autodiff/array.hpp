// Arrays, shapes and shape errors shared by the whole library.
#pragma once

#include <cstddef>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xnoalias.hpp>

namespace ebl {

using Shape = xt::svector<std::size_t, 4>;

/// 64-byte aligned storage that goes through the global operator new, so that a test can count
/// every allocation the library makes (xsimd's aligned allocator calls posix_memalign directly).
template <class T>
struct AlignedAllocator {
  using value_type = T;                             ///< the element type
  static constexpr std::align_val_t alignment{64};  ///< a cache line (and an AVX-512 register)
  AlignedAllocator() noexcept = default;
  /// Allocators of every element type are interchangeable.
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
  /// n elements, 64-byte aligned, through the global aligned operator new.
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), alignment)); }
  /// Frees what allocate() returned.
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, alignment); }
  /// Always equal: any instance frees what another allocated.
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const noexcept {
    return true;
  }
};

/// The library's array: an xtensor row-major array whose storage is a std::vector, so that
/// shrinking keeps capacity and a reused tape never returns memory to the allocator
/// (xtensor's default uvector reallocates on every size change).
template <class T>
using Storage = std::vector<T, AlignedAllocator<T>>;
template <class T>
using Array = xt::xarray_container<Storage<T>, xt::layout_type::row_major, Shape>;

/// "[256,3]"
template <class S>
std::string shape_str(const S& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// Thrown when an op is given arrays whose shapes it cannot combine; the message names the op
/// and the shapes, e.g. "matmul: [256,3] x [2,128] do not align".
class ShapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

inline std::size_t shape_size(const Shape& s) {
  std::size_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

}  // namespace ebl
