#pragma once
// unmix: constrained non-negative matrix factorization on Armadillo.
//
//   #include <unmix.hpp>
//   arma::mat M = ...;                         // m x n, non-negative
//   unmix::Options opt;  opt.solver = unmix::Solver::hals;  opt.H.l1 = 0.1;
//   auto r = unmix::nmf(M, 8, opt);            // M ~= r.W * r.H.t()
//
// Errors throw std::invalid_argument or std::runtime_error; the library never
// prints. See DESIGN.md for the math and the shape of the code.
#include "unmix/version.hpp"
#include "unmix/core/options.hpp"
#include "unmix/core/progress.hpp"
#include "unmix/core/result.hpp"
#include "unmix/core/driver.hpp"
#include "unmix/data/dense.hpp"
#include "unmix/data/sparse.hpp"
#include "unmix/comm/serial.hpp"
#include "unmix/solvers.hpp"
#include "unmix/nmf.hpp"
