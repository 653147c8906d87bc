// The core's own kernels: the two data products against a reference in
// double, on every instruction set this CPU runs, for the shapes that
// exercise each form and its edges (tails of rows and columns, k around
// the tile widths, leading dimensions larger than the rows, adding into
// the output); the same bits for any number of threads; and the fused
// half-step against the separate products and update.
#include <catch2/catch.hpp>
#include <unmix.hpp>
#include <unmix/core/fused_step.hpp>

#include "helpers.hpp"

namespace {

using unmix::kernels::Isa;

std::vector<Isa> isas() {
  std::vector<Isa> out = {Isa::baseline};
  if (unmix::kernels::detect_isa() >= Isa::avx2) out.push_back(Isa::avx2);
  if (unmix::kernels::detect_isa() >= Isa::avx512) out.push_back(Isa::avx512);
  return out;
}

// The error allowed against the double reference: a few roundings of the
// sum's magnitude per term.
template <typename eT>
double allowed(const arma::mat& ref, arma::uword terms) {
  return 4.0 * double(terms + 8) * std::numeric_limits<eT>::epsilon() * std::max(1.0, arma::abs(ref).max());
}

template <typename eT>
void check_products(arma::uword m, arma::uword n, arma::uword k, arma::uword pad, Isa isa, int threads) {
  INFO("m " << m << " n " << n << " k " << k << " pad " << pad << " isa " << unmix::kernels::isa_name(isa)
            << " threads " << threads);
  arma::arma_rng::set_seed(m * 131 + n * 7 + k);
  // M sits in a taller array (leading dimension m + pad), as a block of a
  // larger matrix does.
  const arma::Mat<eT> Mfull(m + pad, n, arma::fill::randu), A(m, k, arma::fill::randu), B(n, k, arma::fill::randu);
  const arma::mat M = arma::conv_to<arma::mat>::from(Mfull.rows(0, m - 1));
  const arma::mat Yref = M.t() * arma::conv_to<arma::mat>::from(A);
  const arma::mat Zref = M * arma::conv_to<arma::mat>::from(B);
  arma::Mat<eT> Y(n, k, arma::fill::value(eT(7))), Z(m, k, arma::fill::value(eT(7)));
  unmix::kernels::trans_times(Mfull.memptr(), m, n, m + pad, A.memptr(), m, k, Y.memptr(), n, threads, false, isa);
  unmix::kernels::times(Mfull.memptr(), m, n, m + pad, B.memptr(), n, k, Z.memptr(), m, threads, false, isa);
  REQUIRE(arma::abs(arma::conv_to<arma::mat>::from(Y) - Yref).max() <= allowed<eT>(Yref, m));
  REQUIRE(arma::abs(arma::conv_to<arma::mat>::from(Z) - Zref).max() <= allowed<eT>(Zref, n));
  // add: out += the product.
  unmix::kernels::trans_times(Mfull.memptr(), m, n, m + pad, A.memptr(), m, k, Y.memptr(), n, threads, true, isa);
  unmix::kernels::times(Mfull.memptr(), m, n, m + pad, B.memptr(), n, k, Z.memptr(), m, threads, true, isa);
  REQUIRE(arma::abs(arma::conv_to<arma::mat>::from(Y) - 2 * Yref).max() <= 2 * allowed<eT>(Yref, m));
  REQUIRE(arma::abs(arma::conv_to<arma::mat>::from(Z) - 2 * Zref).max() <= 2 * allowed<eT>(Zref, n));
}

}  // namespace

TEMPLATE_TEST_CASE("the dense products equal the reference on every instruction set", "[kernels]", float,
                   double) {
  // k around the tile widths (1-8 down the columns, 9+ packed, 20 in float
  // with half-width vectors); m short (packed), at vector tails, long; n
  // small (the sum split into parts) and large (the output split).
  const arma::uword ks[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 20, 24, 33, 64};
  const arma::uword ms[] = {1, 3, 17, 56, 203};
  for (Isa isa : isas())
    for (arma::uword k : ks)
      for (arma::uword m : ms) {
        check_products<TestType>(m, 37, k, m % 2, isa, 1);
        check_products<TestType>(m, 1100, k, 0, isa, 3);
      }
  // Tall M: the rows split among threads, Z's rows in chunks.
  for (Isa isa : isas())
    for (arma::uword k : {3, 6, 16}) {
      check_products<TestType>(20011, 9, k, 5, isa, 2);
      check_products<TestType>(3000, 400, k, 0, isa, 4);
    }
}

TEMPLATE_TEST_CASE("the products do not depend on the number of threads", "[kernels][big]", float, double) {
  for (Isa isa : isas())
    for (arma::uword k : {4, 6, 16}) {
      for (auto [m, n] : {std::pair<arma::uword, arma::uword>{300, 5000}, {40, 30000}, {30000, 40}, {2000, 2000}}) {
        arma::arma_rng::set_seed(k);
        const arma::Mat<TestType> M(m, n, arma::fill::randu), A(m, k, arma::fill::randu), B(n, k, arma::fill::randu);
        arma::Mat<TestType> Y1(n, k), Z1(m, k);
        unmix::kernels::trans_times(M.memptr(), m, n, m, A.memptr(), m, k, Y1.memptr(), n, 1, false, isa);
        unmix::kernels::times(M.memptr(), m, n, m, B.memptr(), n, k, Z1.memptr(), m, 1, false, isa);
        for (int threads : {2, 3, 8}) {
          arma::Mat<TestType> Y(n, k), Z(m, k);
          unmix::kernels::trans_times(M.memptr(), m, n, m, A.memptr(), m, k, Y.memptr(), n, threads, false, isa);
          unmix::kernels::times(M.memptr(), m, n, m, B.memptr(), n, k, Z.memptr(), m, threads, false, isa);
          INFO("m " << m << " n " << n << " k " << k << " threads " << threads);
          REQUIRE(arma::approx_equal(Y, Y1, "absdiff", 0));
          REQUIRE(arma::approx_equal(Z, Z1, "absdiff", 0));
        }
      }
    }
}

TEMPLATE_TEST_CASE("the fused half-step equals the separate products and update", "[kernels][fused]", float,
                   double) {
  using eT = TestType;
  const arma::uword m = 70, n = 3000;
  for (arma::uword k : {3, 12}) {
    const arma::Mat<eT> M = test::noisy(test::low_rank<eT>(m, n, k, 4), 0.05, 5);
    arma::arma_rng::set_seed(6);
    const arma::Mat<eT> W(m, k, arma::fill::randu), H0(n, k, arma::fill::randu);
    const arma::Mat<eT> G_W = W.t() * W, own = H0.t() * H0;
    unmix::FactorOptions fo;
    fo.l1 = 0.01;
    const unmix::FusedPlan plan = unmix::fused_plan<eT>(m, n, k);
    REQUIRE(plan.parts > 1);
    // Separate: R = M^T W, the update, then Z = M H.
    unmix::FactorStep<eT, unmix::rules::HALS> sep(fo, k, 2), fus(fo, k, 3);
    arma::Mat<eT> Hs = H0, Hf = H0, gram_s, gram_f, Zf;
    double cross_s = 0, cross_f = 0, before = 0;
    const arma::Mat<eT> R = M.t() * W;
    sep.update(G_W, R, Hs, own, gram_s, cross_s);
    const arma::Mat<eT> Zs = M * Hs;
    unmix::fused_half_step(M, W, G_W, Hf, own, fus, plan, 3, Zf, gram_f, cross_f, before);
    const double tol = 50 * test::Tol<eT>::rel;
    INFO("k " << k);
    REQUIRE(arma::abs(Hf - Hs).max() <= tol * arma::abs(Hs).max());
    REQUIRE(arma::abs(Zf - Zs).max() <= tol * arma::abs(Zs).max());
    REQUIRE(arma::abs(gram_f - gram_s).max() <= tol * arma::abs(gram_s).max());
    REQUIRE(std::abs(cross_f - cross_s) <= tol * std::abs(cross_s));
    REQUIRE(std::abs(before - unmix::inner(H0, R)) <= tol * std::abs(before));
    // Z of the fused pass is what fused_times sums from the new H, bit for bit.
    arma::Mat<eT> Zt;
    unmix::fused_times(M, Hf, plan, 2, Zt);
    REQUIRE(arma::approx_equal(Zt, Zf, "absdiff", 0));
  }
}
