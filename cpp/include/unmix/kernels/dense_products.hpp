#pragma once
// The two data products of an alternating update on a dense column-major M
// (m x n, leading dimension ld) with a thin factor of k columns:
//
//   trans_times:  Y = M^T A   (n x k)   each Y(j, c) a dot product down column j
//   times:        Z = M B     (m x k)   each column j of M scaled into Z
//
// Both stream M once and keep the thin operand in cache, so they run at the
// speed M comes from memory when k is small and near the machine's FMA rate
// when it is large. BLAS gemm does neither at these shapes: it is built for
// square products and, for k <= 20, reads M at well under the memory's
// bandwidth (bench/bench_kernels.cpp measures both side by side).
//
// The register tiles are in product_tiles.hpp. For k <= 8 (4 with 16
// vector registers) and long columns the vectors run down the columns of M;
// otherwise the thin operand is packed row-major and the vectors run
// across its k columns, at the register's width or half of it, whichever
// pads k less.
//
// Threads split the output when it is long enough (each thread its own rows
// of Y or Z); otherwise they split the sum into a number of parts fixed by
// the shape alone, added in order, so the result never depends on the
// number of threads.
#include <algorithm>
#include <cstddef>
#include <vector>

#include "../parallel/pool.hpp"
#include "product_tiles.hpp"
#include "simd.hpp"

namespace unmix::kernels {

namespace detail {

enum class Form { dot, axpy, packed_dot, packed_axpy };

template <typename T, int Bytes, int Regs>
UNMIX_ALWAYS_INLINE void run_width(Form form, const Task<T>& t, std::size_t lanes) {
  constexpr int W = Bytes / int(sizeof(T));
  if constexpr (Regs >= 32) {
    if (lanes == std::size_t(W / 2)) {
      using Half = Tiles<T, W / 2, Regs>;
      if (form == Form::packed_dot) return Half::packed_dot(t);
      return Half::packed_axpy(t);
    }
  }
  using Full = Tiles<T, W, Regs>;
  switch (form) {
    case Form::dot: return Full::dot(t);
    case Form::axpy: return Full::axpy(t);
    case Form::packed_dot: return Full::packed_dot(t);
    case Form::packed_axpy: return Full::packed_axpy(t);
  }
}

// One entry per instruction set.
template <typename T>
void run_baseline(Form form, const Task<T>& t, std::size_t lanes) { run_width<T, 16, 16>(form, t, lanes); }
#if defined(UNMIX_X86_DISPATCH)
template <typename T>
UNMIX_TARGET_AVX2 void run_avx2(Form form, const Task<T>& t, std::size_t lanes) {
  run_width<T, 32, 16>(form, t, lanes);
}
template <typename T>
UNMIX_TARGET_AVX512 void run_avx512(Form form, const Task<T>& t, std::size_t lanes) {
  run_width<T, 64, 32>(form, t, lanes);
}
#endif

template <typename T>
void run(Form form, const Task<T>& t, std::size_t lanes, Isa isa) {
#if defined(UNMIX_X86_DISPATCH)
  if (isa == Isa::avx512) return run_avx512(form, t, lanes);
  if (isa == Isa::avx2) return run_avx2(form, t, lanes);
#endif
  (void)isa;
  run_baseline(form, t, lanes);
}

inline std::size_t round_up(std::size_t k, std::size_t w) { return (k + w - 1) / w * w; }

// How a product runs on this instruction set: the form, and for the packed
// forms the vector width (lanes of T) and the padded row of the packed
// operand.
struct Layout {
  Form form;
  std::size_t lanes = 0, kp = 0;
};

template <typename T>
Layout layout(bool trans, std::size_t m, std::size_t k, Isa isa) {
  const std::size_t W = std::size_t(vector_bytes(isa)) / sizeof(T);
  const std::size_t per_tile = isa == Isa::avx512 ? 8 : 4;  // columns of F a down-the-columns tile holds
  // Columns of M shorter than 8 vectors leave the down-the-columns forms
  // mostly summing across lanes (trans_times) or reloading Z (times).
  if (k <= per_tile && m >= 8 * W) return {trans ? Form::dot : Form::axpy};
  Layout l{trans ? Form::packed_dot : Form::packed_axpy, W, round_up(k, W)};
  // Half-width vectors when full ones would leave more than a quarter of
  // each packed row as padding (k = 20 in float32: 24 lanes, not 32); with
  // AVX-512, whose 32 registers serve both widths.
  if (isa == Isa::avx512 && 4 * (l.kp - k) > l.kp && round_up(k, W / 2) < l.kp) {
    l.lanes = W / 2;
    l.kp = round_up(k, W / 2);
  }
  return l;
}

// rows x kp row-major from rows [r0, r0 + rows) of the column-major F.
template <typename T>
void pack_rows(const T* F, std::size_t ldf, std::size_t r0, std::size_t rows, std::size_t k,
               std::size_t kp, T* P) {
  for (std::size_t r = 0; r < rows; ++r) {
    T* p = P + r * kp;
    for (std::size_t c = 0; c < k; ++c) p[c] = F[r0 + r + c * ldf];
    for (std::size_t c = k; c < kp; ++c) p[c] = T(0);
  }
}

// How many parts a sum of `summed` terms, into an output of `out` rows and
// k columns, is split into for the threads, from the shape alone (so that
// the result does not depend on the thread count): parts of at least 2^20
// entries of M and 64 terms, at most 64 of them, and their copies of the
// output within an eighth of M. 1: split the output instead.
inline std::size_t sum_parts(std::size_t summed, std::size_t out, std::size_t k) {
  const std::size_t entries = summed * out;
  const std::size_t by_size = entries >> 20, by_terms = summed / 64;
  const std::size_t by_memory = entries / (8 * std::max<std::size_t>(out * k, 1));
  return std::max<std::size_t>(1, std::min({by_size, by_terms, by_memory, std::size_t(64)}));
}

// Tasks for splitting `rows` output rows: a few per thread, to balance them,
// none shorter than min_rows.
inline std::size_t output_tasks(std::size_t rows, std::size_t min_rows, int threads) {
  return std::clamp<std::size_t>(rows / std::max<std::size_t>(min_rows, 1), 1,
                                 std::size_t(std::max(1, threads)) * 4);
}

// Threads worth starting for a product over `entries` entries of M.
inline int useful_threads(int threads, std::size_t entries) {
  return int(std::clamp<std::size_t>(entries >> 16, 1, std::size_t(std::max(1, threads))));
}

// out (rows x k, column-major, ldo) (+)= sum of the parts, in order; each
// part rows x k column-major (row_major: rows x kp row-major).
template <typename T>
void add_parts(const std::vector<T>& parts, std::size_t n_parts, std::size_t rows, std::size_t k,
               std::size_t kp, bool row_major, T* out, std::size_t ldo, bool add) {
  const std::size_t size = row_major ? rows * kp : rows * k;
  for (std::size_t c = 0; c < k; ++c) {
    T* o = out + c * ldo;
    for (std::size_t i = 0; i < rows; ++i) {
      const std::size_t at = row_major ? i * kp + c : c * rows + i;
      T s = parts[at];
      for (std::size_t q = 1; q < n_parts; ++q) s += parts[q * size + at];
      o[i] = add ? o[i] + s : s;
    }
  }
}

}  // namespace detail

// The thin operand A (m x k) of trans_times, made ready once (packed when
// the layout asks) for products with many blocks of columns of M.
template <typename T>
class TransOperand {
 public:
  TransOperand(const T* A, std::size_t lda, std::size_t m, std::size_t k, Isa isa = kernels::isa())
      : layout_(detail::layout<T>(true, m, k, isa)), isa_(isa), m_(m), k_(k), F_(A), ldf_(lda) {
    if (layout_.kp == 0) return;
    packed_.resize(m * layout_.kp);
    detail::pack_rows(A, lda, 0, m, k, layout_.kp, packed_.data());
    F_ = packed_.data();
    ldf_ = layout_.kp;
  }
  // Y (cols x k, ldy) (+)= M(:, [j0, j1))^T A, rows [i0, i1) of M, on
  // the calling thread.
  void apply(const T* M, std::size_t ld, std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1,
             T* Y, std::size_t ldy, bool add) const {
    detail::run(layout_.form, detail::Task<T>{M, ld, i0, i1, j0, j1, F_, ldf_, k_, Y, ldy, add}, layout_.lanes,
                isa_);
  }
  std::size_t rows() const { return m_; }

 private:
  detail::Layout layout_;
  Isa isa_;
  std::size_t m_, k_;
  std::vector<T> packed_;
  const T* F_;
  std::size_t ldf_;
};

// Z = sum over calls of M(:, cols) B (m x k), summed on the calling thread
// in the layout the kernel writes (rows of kp lanes when packed), and put in
// place by add_to.
template <typename T>
class TimesSum {
 public:
  TimesSum(std::size_t m, std::size_t k, Isa isa = kernels::isa())
      : layout_(detail::layout<T>(false, m, k, isa)), isa_(isa), m_(m), k_(k),
        sum_(m * (layout_.kp ? layout_.kp : k)) {}

  // += M(:, [0, cols)) B, B cols x k (ldb); the first call writes.
  void add(const T* M, std::size_t ld, std::size_t cols, const T* B, std::size_t ldb) {
    if (cols == 0) return;
    if (layout_.kp == 0) {
      detail::run(layout_.form, detail::Task<T>{M, ld, 0, m_, 0, cols, B, ldb, k_, sum_.data(), m_, started_},
                  0, isa_);
      started_ = true;
      return;
    }
    // B's rows packed a panel at a time, into a buffer that stays in L1.
    const std::size_t panel = std::max<std::size_t>(64, (std::size_t(32) << 10) / (layout_.kp * sizeof(T)));
    packed_.resize(std::min(panel, cols) * layout_.kp);
    for (std::size_t j = 0; j < cols; j += panel) {
      const std::size_t n = std::min(panel, cols - j);
      detail::pack_rows(B, ldb, j, n, k_, layout_.kp, packed_.data());
      detail::run(layout_.form,
                  detail::Task<T>{M + j * ld, ld, 0, m_, 0, n, packed_.data(), layout_.kp, k_, sum_.data(),
                                  layout_.kp, started_},
                  layout_.lanes, isa_);
      started_ = true;
    }
  }
  bool empty() const { return !started_; }
  // out (m x k, ldo) (+)= the sum.
  void add_to(T* out, std::size_t ldo, bool add) const {
    if (!started_) {
      if (!add)
        for (std::size_t c = 0; c < k_; ++c) std::fill(out + c * ldo, out + c * ldo + m_, T(0));
      return;
    }
    detail::add_parts(sum_, 1, m_, k_, layout_.kp, layout_.kp > 0, out, ldo, add);
  }

 private:
  detail::Layout layout_;
  Isa isa_;
  std::size_t m_, k_;
  std::vector<T> sum_, packed_;
  bool started_ = false;
};

// Y (n x k, leading dimension ldy) = M^T A (add: Y += M^T A), M m x n
// (leading dimension ld), A m x k (lda).
template <typename T>
void trans_times(const T* M, std::size_t m, std::size_t n, std::size_t ld, const T* A,
                 std::size_t lda, std::size_t k, T* Y, std::size_t ldy, int threads, bool add = false,
                 Isa isa = kernels::isa()) {
  if (n == 0 || k == 0) return;
  if (m == 0) {
    if (!add)
      for (std::size_t c = 0; c < k; ++c) std::fill(Y + c * ldy, Y + c * ldy + n, T(0));
    return;
  }
  threads = detail::useful_threads(threads, m * n);
  const TransOperand<T> A_ready(A, lda, m, k, isa);
  // Each thread its own columns of M (rows of Y) when there are enough of
  // them; otherwise the rows of M are split into parts of Y, added after.
  const std::size_t parts = n >= 1024 ? 1 : detail::sum_parts(m, n, k);
  if (parts == 1) {
    const std::size_t tasks = detail::output_tasks(n, 16, threads);
    const parallel::Split split{n, tasks};
    parallel::for_each_task(tasks, threads, [&](std::size_t p) {
      A_ready.apply(M, ld, 0, m, split.begin(p), split.end(p), Y, ldy, add);
    });
    return;
  }
  const parallel::Split split{m, parts};
  std::vector<T> partial(parts * n * k);
  parallel::for_each_task(parts, threads, [&](std::size_t p) {
    A_ready.apply(M, ld, split.begin(p), split.end(p), 0, n, partial.data() + p * n * k, n, false);
  });
  detail::add_parts(partial, parts, n, k, k, false, Y, ldy, add);
}

// Z (m x k, leading dimension ldz) = M B (add: Z += M B), M m x n (leading
// dimension ld), B n x k (ldb).
template <typename T>
void times(const T* M, std::size_t m, std::size_t n, std::size_t ld, const T* B, std::size_t ldb,
           std::size_t k, T* Z, std::size_t ldz, int threads, bool add = false, Isa isa = kernels::isa()) {
  if (m == 0 || k == 0) return;
  if (n == 0) {
    if (!add)
      for (std::size_t c = 0; c < k; ++c) std::fill(Z + c * ldz, Z + c * ldz + m, T(0));
    return;
  }
  threads = detail::useful_threads(threads, m * n);
  // Each thread its own columns of M, into a sum of its own, when the sums
  // are cheap (M is then read in long runs); otherwise its own rows of Z.
  const std::size_t parts = detail::sum_parts(n, m, k);
  if (parts > 1) {
    std::vector<TimesSum<T>> sums(parts, TimesSum<T>(m, k, isa));
    const parallel::Split split{n, parts};
    parallel::for_each_task(parts, threads, [&](std::size_t p) {
      sums[p].add(M + split.begin(p) * ld, ld, split.end(p) - split.begin(p), B + split.begin(p), ldb);
    });
    for (std::size_t p = 0; p < parts; ++p) sums[p].add_to(Z, ldz, add || p > 0);
    return;
  }
  const detail::Layout l = detail::layout<T>(false, m, k, isa);
  const std::size_t tasks = detail::output_tasks(m, 256, threads);
  const parallel::Split split{m, tasks};
  if (l.kp == 0) {
    parallel::for_each_task(tasks, threads, [&](std::size_t p) {
      detail::run(l.form, detail::Task<T>{M, ld, split.begin(p), split.end(p), 0, n, B, ldb, k, Z, ldz, add},
                  0, isa);
    });
    return;
  }
  // Packed, each thread its rows of Z as rows of kp lanes (B packed once).
  std::vector<T> rows(m * l.kp), packed(n * l.kp);
  detail::pack_rows(B, ldb, 0, n, k, l.kp, packed.data());
  parallel::for_each_task(tasks, threads, [&](std::size_t p) {
    detail::run(l.form, detail::Task<T>{M, ld, split.begin(p), split.end(p), 0, n, packed.data(), l.kp, k,
                                        rows.data(), l.kp, false},
                l.lanes, isa);
  });
  detail::add_parts(rows, 1, m, k, l.kp, true, Z, ldz, add);
}

}  // namespace unmix::kernels
