#pragma once
// Explicit vectors for the core's own kernels, written once with the
// compiler's vector extensions (GCC and Clang) and compiled for each
// instruction set a machine may have. A kernel is a template over the
// vector width whose every function is always inlined into one entry point
// per instruction set; the entry carries the target attribute, so the same
// source becomes AVX-512, AVX2 or SSE2/NEON code. Which entry runs is chosen
// at run time from the CPU (or UNMIX_SIMD=avx512|avx2|baseline, for tests
// and comparisons), so a build for one machine runs on any other.
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#define UNMIX_ALWAYS_INLINE inline __attribute__((always_inline))

// The vector helpers below take and return wide vectors; they are always
// inlined into an entry compiled for the right instruction set, so the ABI
// of passing such vectors between functions (which GCC warns about) never
// applies.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define UNMIX_X86_DISPATCH 1
#define UNMIX_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#define UNMIX_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace unmix::kernels {

template <typename T, int W>
struct VectorOf {
  typedef T type __attribute__((vector_size(W * sizeof(T))));
};
// W lanes of T; W = 1 is a plain scalar in vector clothing (used by tails).
template <typename T, int W>
using Vec = typename VectorOf<T, W>::type;

template <int W, typename T>
UNMIX_ALWAYS_INLINE Vec<T, W> load(const T* p) {
  Vec<T, W> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <int W, typename T>
UNMIX_ALWAYS_INLINE void store(T* p, const Vec<T, W>& v) {
  std::memcpy(p, &v, sizeof(v));
}

// The two halves of a vector, added: W lanes become W / 2.
template <int W, typename T>
UNMIX_ALWAYS_INLINE Vec<T, W / 2> fold(const Vec<T, W>& v) {
  Vec<T, W / 2> lo, hi;
  std::memcpy(&lo, &v, sizeof(lo));
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof(lo), sizeof(hi));
  return lo + hi;
}

template <int W, typename T>
UNMIX_ALWAYS_INLINE T sum(const Vec<T, W>& v) {
  if constexpr (W == 1)
    return v[0];
  else
    return sum<W / 2, T>(fold<W, T>(v));
}

enum class Isa { baseline, avx2, avx512 };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "baseline";
  }
}

// Bytes per vector register of an instruction set.
constexpr int vector_bytes(Isa isa) {
  return isa == Isa::avx512 ? 64 : isa == Isa::avx2 ? 32 : 16;
}

// The best instruction set this CPU runs, at most the one UNMIX_SIMD names.
inline Isa detect_isa() {
  Isa best = Isa::baseline;
#if defined(UNMIX_X86_DISPATCH)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
  if (best == Isa::avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    best = Isa::avx512;
#endif
  if (const char* asked = std::getenv("UNMIX_SIMD")) {
    const std::string a(asked);
    const Isa cap = a == "baseline" ? Isa::baseline : a == "avx2" ? Isa::avx2 : Isa::avx512;
    if (int(cap) < int(best)) best = cap;
  }
  return best;
}

inline Isa isa() {
  static const Isa chosen = detect_isa();
  return chosen;
}

}  // namespace unmix::kernels
