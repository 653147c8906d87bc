#pragma once
// The register tiles of the dense products (kernels/dense_products.hpp says
// what they compute and how they are called). A tile keeps its sums in
// vector registers while it streams entries of M; the four forms differ in
// what runs along the vectors:
//
//   dot          rows of M (J columns of M x CB columns of A, sums across
//                the lanes at the end)             trans_times, k <= 8
//   axpy         rows of M and of Z (RV vectors of rows x CB columns)
//                                                   times, k <= 8
//   packed_dot   columns of the packed thin operand, entries of M broadcast
//                (R columns of M x KV vectors)      trans_times, k > 8 or short columns
//   packed_axpy  the same, R rows of M              times, k > 8 or short columns
//
// Everything here is always inlined into one entry per instruction set, so
// the vector width W (lanes of T) and the register count Regs are those of
// the entry's target.
#include <algorithm>
#include <cstddef>

#include "simd.hpp"

namespace unmix::kernels::detail {

// One piece of a product, over rows [i0, i1) and columns [j0, j1) of M
// (ld apart):
//   trans_times:  out(j, c) (+)= sum_i M(i, j) F(i, c)     j in [j0, j1)
//   times:        out(i, c) (+)= sum_j M(i, j) F(j, c)     i in [i0, i1)
// F is column-major with leading dimension ldf, or for the packed forms
// row-major with ldf >= k lanes a row (zeros past k). out is column-major
// with leading dimension ldo, but for packed_axpy row-major with ldf lanes
// a row. add: add to out instead of writing it.
template <typename T>
struct Task {
  const T* M;
  std::size_t ld, i0, i1, j0, j1;
  const T* F;
  std::size_t ldf, k;
  T* out;
  std::size_t ldo;
  bool add;
};

// Rows of F per chunk (dot) and of Z per chunk (axpy): the chunk (rows x
// k) stays in about 128 KiB of L2.
template <typename T>
std::size_t chunk_rows(std::size_t k) {
  return std::max<std::size_t>(256, (std::size_t(128) << 10) / (sizeof(T) * std::max<std::size_t>(k, 1)));
}
// Columns of M an axpy tile takes side by side: a few streams keep the
// memory busiest (measured: blocks of 8 read M at 1.5-2x the rate of 64).
constexpr std::size_t axpy_block_cols = 8;

template <typename T, int W, int Regs = (W * sizeof(T) >= 64 ? 32 : 16)>
struct Tiles {
  using V = Vec<T, W>;
  // Vector registers: 32 with AVX-512, 16 otherwise (AVX2, SSE2, NEON).
  // Tiles keep at most 24 (12) accumulators.
  static constexpr bool wide = Regs >= 32;
  static constexpr int budget = wide ? 24 : 12;

  // Adds the lanes of acc, and the rows [i, len) that W lanes did not
  // reach, with vectors of half the width, and so on down to one lane.
  template <int J, int CB>
  static UNMIX_ALWAYS_INLINE void dot_finish(const V (&acc)[J][CB], const T* M, std::size_t ld,
                                             const T* A, std::size_t lda, std::size_t i,
                                             std::size_t len, T* Y, std::size_t ldy, bool add) {
    if constexpr (W == 1) {
      for (int q = 0; q < J; ++q)
        for (int c = 0; c < CB; ++c) {
          T& y = Y[q + c * ldy];
          y = add ? y + acc[q][c][0] : acc[q][c][0];
        }
    } else {
      using H = Vec<T, W / 2>;
      H half[J][CB];
#pragma GCC unroll 8
      for (int q = 0; q < J; ++q)
#pragma GCC unroll 8
        for (int c = 0; c < CB; ++c) half[q][c] = fold<W, T>(acc[q][c]);
      if (i + W / 2 <= len) {
        H a[CB];
#pragma GCC unroll 8
        for (int c = 0; c < CB; ++c) a[c] = load<W / 2>(A + c * lda + i);
#pragma GCC unroll 8
        for (int q = 0; q < J; ++q) {
          const H x = load<W / 2>(M + q * ld + i);
#pragma GCC unroll 8
          for (int c = 0; c < CB; ++c) half[q][c] += x * a[c];
        }
        i += W / 2;
      }
      Tiles<T, W / 2>::template dot_finish<J, CB>(half, M, ld, A, lda, i, len, Y, ldy, add);
    }
  }

  // J columns of M (from M, ld apart) against CB columns of A over len rows.
  template <int J, int CB>
  static UNMIX_ALWAYS_INLINE void dot_tile(const T* M, std::size_t ld, const T* A, std::size_t lda,
                                           std::size_t len, T* Y, std::size_t ldy, bool add) {
    V acc[J][CB];
#pragma GCC unroll 8
    for (int q = 0; q < J; ++q)
#pragma GCC unroll 8
      for (int c = 0; c < CB; ++c) acc[q][c] = V{};
    std::size_t i = 0;
    for (; i + W <= len; i += W) {
      // Whichever operand has fewer vectors is loaded first and held, so
      // that accumulators and operands fit the 32 (16) vector registers.
      if constexpr (CB <= J) {
        V a[CB];
#pragma GCC unroll 8
        for (int c = 0; c < CB; ++c) a[c] = load<W>(A + c * lda + i);
#pragma GCC unroll 8
        for (int q = 0; q < J; ++q) {
          const V x = load<W>(M + q * ld + i);
#pragma GCC unroll 8
          for (int c = 0; c < CB; ++c) acc[q][c] += x * a[c];
        }
      } else {
        V x[J];
#pragma GCC unroll 8
        for (int q = 0; q < J; ++q) x[q] = load<W>(M + q * ld + i);
#pragma GCC unroll 8
        for (int c = 0; c < CB; ++c) {
          const V a = load<W>(A + c * lda + i);
#pragma GCC unroll 8
          for (int q = 0; q < J; ++q) acc[q][c] += x[q] * a;
        }
      }
    }
    dot_finish<J, CB>(acc, M, ld, A, lda, i, len, Y, ldy, add);
  }

  // Rows in chunks of A that stay in L2; in a chunk, J columns of M at a
  // time (one at a time for the last few) against all CB = k columns of A.
  template <int J, int CB>
  static UNMIX_ALWAYS_INLINE void dot_columns(const Task<T>& t) {
    const std::size_t chunk = chunk_rows<T>(t.k);
    for (std::size_t i = t.i0; i < t.i1; i += chunk) {
      const std::size_t len = std::min(chunk, t.i1 - i);
      const bool add = t.add || i > t.i0;
      const T* A = t.F + i;
      std::size_t j = t.j0;
      for (; j + J <= t.j1; j += J)
        dot_tile<J, CB>(t.M + i + j * t.ld, t.ld, A, t.ldf, len, t.out + j, t.ldo, add);
      for (; j < t.j1; ++j) dot_tile<1, CB>(t.M + i + j * t.ld, t.ld, A, t.ldf, len, t.out + j, t.ldo, add);
    }
  }

  // The down-the-columns forms take k <= 8 (4 with 16 registers) in one
  // tile: J columns of M (RV vectors of rows) by k, within the budget of
  // accumulators.
  static constexpr int columns_for(int k) {
    if (wide) return k <= 2 ? 8 : k <= 4 ? 6 : 3;
    return k <= 2 ? 4 : 3;
  }

  static UNMIX_ALWAYS_INLINE void dot(const Task<T>& t) {
    switch (t.k) {
      case 1: return dot_columns<columns_for(1), 1>(t);
      case 2: return dot_columns<columns_for(2), 2>(t);
      case 3: return dot_columns<columns_for(3), 3>(t);
      case 4: return dot_columns<columns_for(4), 4>(t);
    }
    if constexpr (wide) {
      switch (t.k) {
        case 5: return dot_columns<3, 5>(t);
        case 6: return dot_columns<3, 6>(t);
        case 7: return dot_columns<3, 7>(t);
        case 8: return dot_columns<3, 8>(t);
      }
    }
  }

  // RV vectors of rows of Z (from Z) and CB of its columns, over ncols
  // columns of M.
  template <int RV, int CB>
  static UNMIX_ALWAYS_INLINE void axpy_tile(const T* M, std::size_t ld, const T* B, std::size_t ldb,
                                            std::size_t ncols, T* Z, std::size_t ldz, bool add) {
    V acc[RV][CB];
#pragma GCC unroll 8
    for (int c = 0; c < CB; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < RV; ++r) acc[r][c] = add ? load<W>(Z + c * ldz + r * W) : V{};
    for (std::size_t j = 0; j < ncols; ++j) {
      const T* x = M + j * ld;
      if constexpr (CB <= RV) {
        T b[CB];
#pragma GCC unroll 8
        for (int c = 0; c < CB; ++c) b[c] = B[j + c * ldb];
#pragma GCC unroll 8
        for (int r = 0; r < RV; ++r) {
          const V v = load<W>(x + r * W);
#pragma GCC unroll 8
          for (int c = 0; c < CB; ++c) acc[r][c] += v * b[c];
        }
      } else {
        V v[RV];
#pragma GCC unroll 8
        for (int r = 0; r < RV; ++r) v[r] = load<W>(x + r * W);
#pragma GCC unroll 8
        for (int c = 0; c < CB; ++c) {
          const T b = B[j + c * ldb];
#pragma GCC unroll 8
          for (int r = 0; r < RV; ++r) acc[r][c] += v[r] * b;
        }
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < CB; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < RV; ++r) store<W>(Z + c * ldz + r * W, acc[r][c]);
  }

  // Rows [i, i1) of a column block, fewer than RV * W of them: one vector
  // at a time, then narrower vectors for the rest.
  template <int CB>
  static UNMIX_ALWAYS_INLINE void axpy_rest(const T* M, std::size_t ld, const T* B, std::size_t ldb,
                                            std::size_t ncols, T* Z, std::size_t ldz, std::size_t i,
                                            std::size_t i1, bool add) {
    for (; i + W <= i1; i += W) axpy_tile<1, CB>(M + i, ld, B, ldb, ncols, Z + i, ldz, add);
    if constexpr (W > 1) Tiles<T, W / 2>::template axpy_rest<CB>(M, ld, B, ldb, ncols, Z, ldz, i, i1, add);
  }

  template <int RV, int CB>
  static UNMIX_ALWAYS_INLINE void axpy_rows(const T* M, std::size_t ld, const T* B, std::size_t ldb,
                                            std::size_t ncols, T* Z, std::size_t ldz, std::size_t i0,
                                            std::size_t i1, bool add) {
    std::size_t i = i0;
    for (; i + RV * W <= i1; i += RV * W) axpy_tile<RV, CB>(M + i, ld, B, ldb, ncols, Z + i, ldz, add);
    axpy_rest<CB>(M, ld, B, ldb, ncols, Z, ldz, i, i1, add);
  }

  // Rows in chunks whose part of Z stays in L2, and within a chunk the
  // columns of M a block of axpy_block_cols at a time.
  template <int RV, int CB>
  static UNMIX_ALWAYS_INLINE void axpy_columns(const Task<T>& t) {
    const std::size_t chunk = chunk_rows<T>(t.k);
    for (std::size_t i = t.i0; i < t.i1; i += chunk) {
      const std::size_t i1 = std::min(t.i1, i + chunk);
      for (std::size_t j = t.j0; j < t.j1; j += axpy_block_cols) {
        const std::size_t ncols = std::min(axpy_block_cols, t.j1 - j);
        axpy_rows<RV, CB>(t.M + j * t.ld, t.ld, t.F + j, t.ldf, ncols, t.out, t.ldo, i, i1, t.add || j > t.j0);
      }
    }
  }

  static UNMIX_ALWAYS_INLINE void axpy(const Task<T>& t) {
    switch (t.k) {
      case 1: return axpy_columns<columns_for(1), 1>(t);
      case 2: return axpy_columns<columns_for(2), 2>(t);
      case 3: return axpy_columns<columns_for(3), 3>(t);
      case 4: return axpy_columns<columns_for(4), 4>(t);
    }
    if constexpr (wide) {
      switch (t.k) {
        case 5: return axpy_columns<3, 5>(t);
        case 6: return axpy_columns<3, 6>(t);
        case 7: return axpy_columns<3, 7>(t);
        case 8: return axpy_columns<3, 8>(t);
      }
    }
  }

  // --- The packed forms: vectors across the columns of the packed operand,
  // entries of M broadcast. No horizontal sums and no reloading of the
  // thin operand per column of M: the form for k > 8, where the products
  // are bound by the FMA rate, and for short columns of M.

  // Entries of M per tile (columns for trans_times, rows for times), for
  // kv vectors a row of P; a tile covers budget / R of those vectors.
  static int packed_tile_for(std::size_t kv) {
    if (kv == 1) return budget;
    if (kv == 2) return budget / 2;
    return wide ? 8 : 6;
  }

  // acc[r][v] += sum_{s < len} x(r, s) P(s, v): x(r, s) = X[r * ld + s]
  // (R columns of M) when Cols, X[r + s * ld] (R rows) otherwise.
  template <bool Cols, int R, int KV>
  static UNMIX_ALWAYS_INLINE void packed_tile(const T* X, std::size_t ld, const T* P, std::size_t kp,
                                              std::size_t len, V (&acc)[R][KV]) {
    for (std::size_t s = 0; s < len; ++s) {
      V b[KV];
#pragma GCC unroll 8
      for (int v = 0; v < KV; ++v) b[v] = load<W>(P + s * kp + v * W);
#pragma GCC unroll 24
      for (int r = 0; r < R; ++r) {
        const T x = Cols ? X[r * ld + s] : X[r + s * ld];
#pragma GCC unroll 8
        for (int v = 0; v < KV; ++v) acc[r][v] += x * b[v];
      }
    }
  }

  // trans_times: R columns of M from column j against nv vectors of P
  // from vector v0, rows [i, i + len).
  template <int R, int MaxNV, int NV = 1>
  static UNMIX_ALWAYS_INLINE void packed_dot_tile(std::size_t nv, const Task<T>& t, std::size_t i,
                                                  std::size_t len, std::size_t j, std::size_t v0,
                                                  bool add) {
    if constexpr (NV < MaxNV)
      if (nv != NV) return packed_dot_tile<R, MaxNV, NV + 1>(nv, t, i, len, j, v0, add);
    V acc[R][NV];
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = V{};
    packed_tile<true, R, NV>(t.M + i + j * t.ld, t.ld, t.F + i * t.ldf + v0 * W, t.ldf, len, acc);
    for (int v = 0; v < NV; ++v) {
      const std::size_t c0 = (v0 + v) * W;
      const std::size_t lanes = std::min<std::size_t>(W, t.k > c0 ? t.k - c0 : 0);
      for (int r = 0; r < R; ++r)
        for (std::size_t l = 0; l < lanes; ++l) {
          T& y = t.out[(j + r) + (c0 + l) * t.ldo];
          y = add ? y + acc[r][v][l] : acc[r][v][l];
        }
    }
  }

  template <int R>
  static UNMIX_ALWAYS_INLINE void packed_dot_columns(const Task<T>& t) {
    const std::size_t kv = t.ldf / W, per = std::size_t(budget / R);
    // With several blocks of vectors, a tile's pieces of M are read again
    // for each: keep them in half of L1. With one, keep P in L2.
    const std::size_t chunk = kv > per ? std::max<std::size_t>(W, (std::size_t(16) << 10) / (R * sizeof(T)))
                                       : std::max<std::size_t>(W, (std::size_t(256) << 10) / (t.ldf * sizeof(T)));
    for (std::size_t i = t.i0; i < t.i1; i += chunk) {
      const std::size_t len = std::min(chunk, t.i1 - i);
      const bool add = t.add || i > t.i0;
      constexpr int P = budget / R;
      std::size_t j = t.j0;
      for (; j + R <= t.j1; j += R)
        for (std::size_t v0 = 0; v0 < kv; v0 += per) packed_dot_tile<R, P>(std::min(per, kv - v0), t, i, len, j, v0, add);
      // The last columns four, then one at a time.
      for (; j + 4 <= t.j1; j += 4)
        for (std::size_t v0 = 0; v0 < kv; v0 += per) packed_dot_tile<4, P>(std::min(per, kv - v0), t, i, len, j, v0, add);
      for (; j < t.j1; ++j)
        for (std::size_t v0 = 0; v0 < kv; v0 += per) packed_dot_tile<1, P>(std::min(per, kv - v0), t, i, len, j, v0, add);
    }
  }

  static UNMIX_ALWAYS_INLINE void packed_dot(const Task<T>& t) {
    switch (packed_tile_for(t.ldf / W)) {
      case 24: if constexpr (budget >= 24) packed_dot_columns<24>(t); break;
      case 12: packed_dot_columns<12>(t); break;
      case 8: if constexpr (budget >= 24) packed_dot_columns<8>(t); break;
      default: packed_dot_columns<6>(t); break;
    }
  }

  // times: R rows of M from row i against nv vectors of P from vector v0,
  // columns [j, j + ncols), into Zt.
  template <int R, int MaxNV, int NV = 1>
  static UNMIX_ALWAYS_INLINE void packed_axpy_tile(std::size_t nv, const Task<T>& t, std::size_t i,
                                                   std::size_t j, std::size_t ncols, std::size_t v0,
                                                   bool add) {
    if constexpr (NV < MaxNV)
      if (nv != NV) return packed_axpy_tile<R, MaxNV, NV + 1>(nv, t, i, j, ncols, v0, add);
    V acc[R][NV];
    T* z = t.out + i * t.ldf + v0 * W;
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = add ? load<W>(z + r * t.ldf + v * W) : V{};
    packed_tile<false, R, NV>(t.M + i + j * t.ld, t.ld, t.F + j * t.ldf + v0 * W, t.ldf, ncols, acc);
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) store<W>(z + r * t.ldf + v * W, acc[r][v]);
  }

  template <int R>
  static UNMIX_ALWAYS_INLINE void packed_axpy_rows(const Task<T>& t) {
    const std::size_t kv = t.ldf / W, per = std::size_t(budget / R);
    // Columns per panel: the panel of P stays in half of L1.
    const std::size_t panel = std::max<std::size_t>(8, (std::size_t(16) << 10) / (t.ldf * sizeof(T)));
    for (std::size_t j = t.j0; j < t.j1; j += panel) {
      const std::size_t ncols = std::min(panel, t.j1 - j);
      const bool add = t.add || j > t.j0;
      constexpr int P = budget / R;
      std::size_t i = t.i0;
      for (; i + R <= t.i1; i += R)
        for (std::size_t v0 = 0; v0 < kv; v0 += per) packed_axpy_tile<R, P>(std::min(per, kv - v0), t, i, j, ncols, v0, add);
      // The last rows four, then one at a time.
      for (; i + 4 <= t.i1; i += 4)
        for (std::size_t v0 = 0; v0 < kv; v0 += per) packed_axpy_tile<4, P>(std::min(per, kv - v0), t, i, j, ncols, v0, add);
      for (; i < t.i1; ++i)
        for (std::size_t v0 = 0; v0 < kv; v0 += per) packed_axpy_tile<1, P>(std::min(per, kv - v0), t, i, j, ncols, v0, add);
    }
  }

  static UNMIX_ALWAYS_INLINE void packed_axpy(const Task<T>& t) {
    switch (packed_tile_for(t.ldf / W)) {
      case 24: if constexpr (budget >= 24) packed_axpy_rows<24>(t); break;
      case 12: packed_axpy_rows<12>(t); break;
      case 8: if constexpr (budget >= 24) packed_axpy_rows<8>(t); break;
      default: packed_axpy_rows<6>(t); break;
    }
  }
};

}  // namespace unmix::kernels::detail
