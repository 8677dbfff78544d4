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

/// The same product for small matrices (m·n·k up to kSmallGemm), by plain loops that the
/// compiler vectorises along a contiguous dimension: a BLAS call costs about a microsecond of
/// set-up, more than the arithmetic of a 9×9 by 9×64 product, and a batch of graphs makes
/// hundreds of them (bmm). Larger products go to BLAS.
inline constexpr std::size_t kSmallGemm = 16384;
template <class T>
void gemm_small(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
                const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                std::size_t ldc) {
  if (m * n * k > kSmallGemm)
    return gemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  for (std::size_t i = 0; i < m; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      for (std::size_t j = 0; j < n; ++j) c[j] = T(0);
    else if (beta != T(1))
      for (std::size_t j = 0; j < n; ++j) c[j] *= beta;
    if (!trans_b) {  // c[i,:] += α Σ_p a(i,p) B[p,:]: axpy along B's contiguous rows
      for (std::size_t p = 0; p < k; ++p) {
        const T aip = alpha * (trans_a ? A[p * lda + i] : A[i * lda + p]);
        const T* b = B + p * ldb;
        for (std::size_t j = 0; j < n; ++j) c[j] += aip * b[j];
      }
    } else if (!trans_a) {  // c[i,j] += α Σ_p A[i,p] B[j,p]: dot products along both rows, in
      // 8 independent partial sums so that they vectorise without reassociating a float sum
      const T* a = A + i * lda;
      for (std::size_t j = 0; j < n; ++j) {
        const T* b = B + j * ldb;
        T part[8] = {};
        std::size_t p = 0;
        for (; p + 8 <= k; p += 8)
          for (std::size_t l = 0; l < 8; ++l) part[l] += a[p + l] * b[p + l];
        T acc = ((part[0] + part[1]) + (part[2] + part[3])) +
                ((part[4] + part[5]) + (part[6] + part[7]));
        for (; p < k; ++p) acc += a[p] * b[p];
        c[j] += alpha * acc;
      }
    } else {  // c[i,j] += α Σ_p A[p,i] B[j,p]
      for (std::size_t j = 0; j < n; ++j) {
        const T* b = B + j * ldb;
        T acc = 0;
        for (std::size_t p = 0; p < k; ++p) acc += A[p * lda + i] * b[p];
        c[j] += alpha * acc;
      }
    }
  }
}

}  // namespace ebl
