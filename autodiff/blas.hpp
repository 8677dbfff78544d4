// The one entry point to BLAS: row-major C = alpha op(A) op(B) + beta C through xtensor-blas's
// cxxblas layer, linked to OpenBLAS. Transposes are passed to BLAS, never materialised.
#pragma once

#include <cstddef>

#include <xtensor-blas/xblas.hpp>

namespace ebl {

template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  using I = xt::blas_index_t;
  cxxblas::gemm<I>(cxxblas::StorageOrder::RowMajor,
                   trans_a ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans,
                   trans_b ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans, I(m), I(n),
                   I(k), alpha, A, I(lda), B, I(ldb), beta, C, I(ldc));
}

}  // namespace ebl
