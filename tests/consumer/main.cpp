// Factors an exactly rank-3 matrix through the installed headers and checks
// the fit; exits non-zero on failure.
#include <cstdio>
#include <unmix.hpp>

int main() {
  arma::arma_rng::set_seed(1);
  const arma::mat W(40, 3, arma::fill::randu), H(30, 3, arma::fill::randu);
  const arma::mat M = W * H.t();
  unmix::Options opt;
  opt.solver = unmix::parse_solver("hals");
  opt.max_iter = 2000;
  opt.tol = 1e-10;
  const auto r = unmix::nmf(M, 3, opt);
  const double err = arma::norm(M - r.W * r.H.t(), "fro") / arma::norm(M, "fro");
  std::printf("unmix %s: %d iterations, relative error %.2e\n", unmix::version, r.n_iter, err);
  return err < 1e-3 ? 0 : 1;
}
