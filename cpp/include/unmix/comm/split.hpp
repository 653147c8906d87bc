#pragma once
#include <armadillo>

namespace unmix::comm {

// A run of global rows: the first index and how many.
struct Range {
  arma::uword first, count;
};

// The index-th of `parts` nearly equal runs of 0 .. total - 1 (the first
// total % parts runs get one row more), so uneven sizes split cleanly.
inline Range split(arma::uword total, int parts, int index) {
  const arma::uword p = arma::uword(parts), i = arma::uword(index);
  const arma::uword base = total / p, extra = total % p;
  return {i * base + std::min(i, extra), base + (i < extra ? 1 : 0)};
}

}  // namespace unmix::comm
