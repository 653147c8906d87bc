#pragma once
// What to factor: the input described and checked before anything is read.
// Part of the unmix-nmf program: included only by unmix_nmf.cpp.
#include "args.hpp"

namespace unmix_nmf {

// ---------------------------------------------------------------- the problem

enum class Source { npy, mtx, generate };

// What is factored, decided identically on every rank before any data moves.
// The core factors M (m x n) ~= W_core H_core^T; the user's X is
// (n_samples x n_features) and M is X, or X^T for a C-ordered .npy (whose
// bytes are X^T in column-major order).
struct Problem {
  Source source = Source::npy;
  unmix::io::NpyHeader npy;
  unmix::io::MtxHeader mtx;
  unmix::io::GenerateSpec gen;
  arma::uword n_samples = 0, n_features = 0;
  arma::uword m = 0, n = 0;
  bool transposed = false;
  bool sparse = false;
  std::string dtype = "float64";
  int pr = 1, pc = 1;
  arma::uword k = 0;
  unmix::Options opt;
};

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::string shape_text(arma::uword r, arma::uword c) {
  return std::to_string(r) + " x " + std::to_string(c);
}

Problem describe(const Args& a, int ranks) {
  Problem p;
  if (a.generate) {
    p.source = Source::generate;
    p.gen.m = a.gen_rows;
    p.gen.n = a.gen_cols;
    p.gen.rank = arma::uword(a.gen_rank);
    p.gen.noise = a.noise;
    p.gen.density = a.density;
    p.gen.seed = a.seed;
    p.n_samples = a.gen_rows;
    p.n_features = a.gen_cols;
    p.sparse = a.density < 1.0;
    p.opt.data_name = "the generated matrix";
  } else {
    const std::string ext = lower_extension(a.input);
    if (ext == ".npy") {
      p.source = Source::npy;
      p.npy = unmix::io::read_npy_header(a.input);
      p.n_samples = p.npy.rows;
      p.n_features = p.npy.cols;
      p.transposed = !p.npy.fortran_order;
      p.dtype = p.npy.dtype();
    } else if (ext == ".mtx") {
      p.source = Source::mtx;
      p.mtx = unmix::io::read_mtx_header(a.input);
      p.n_samples = p.mtx.rows;
      p.n_features = p.mtx.cols;
      p.sparse = true;
    } else {
      throw UsageError("the input must be a .npy or .mtx file, got '" + a.input + "'");
    }
    p.opt.data_name = "'" + a.input + "'";
  }
  if (!a.dtype.empty()) p.dtype = a.dtype;
  if (p.n_samples == 0 || p.n_features == 0)
    throw std::invalid_argument(p.opt.data_name + " holds an empty matrix (shape " +
                                shape_text(p.n_samples, p.n_features) +
                                "): expected at least 1 row and 1 column");
  p.m = p.transposed ? p.n_features : p.n_samples;
  p.n = p.transposed ? p.n_samples : p.n_features;
  p.k = arma::uword(a.k);

  if (a.grid_r > 0) {
    p.pr = a.grid_r;
    p.pc = a.grid_c;
#ifndef UNMIX_HAS_MPI
    if (p.pr * p.pc != 1)
      throw UsageError("--grid " + std::to_string(p.pr) + "x" + std::to_string(p.pc) +
                       " needs MPI, but this unmix-nmf was built without it (1 rank)");
#endif
    if (static_cast<long long>(p.pr) * p.pc != ranks)
      throw UsageError("--grid " + std::to_string(p.pr) + "x" + std::to_string(p.pc) + " needs " +
                       std::to_string(static_cast<long long>(p.pr) * p.pc) + " ranks, but " +
                       std::to_string(ranks) + (ranks == 1 ? " is" : " are") +
                       " running (omit --grid to choose the grid for the ranks there are)");
    if (arma::uword(p.pr) > p.m || arma::uword(p.pc) > p.n)
      throw UsageError("--grid " + std::to_string(p.pr) + "x" + std::to_string(p.pc) +
                       " has more grid rows or columns than M (" + shape_text(p.m, p.n) + ")");
  } else {
    const auto [r, c] = unmix::comm::choose_grid(ranks, p.m, p.n);
    p.pr = r;
    p.pc = c;
  }

  unmix::Options& o = p.opt;
  o.loss = unmix::parse_loss(a.loss);
  // As in Python: the default solver is mu for the KL loss.
  o.solver = unmix::parse_solver(!a.solver_given && o.loss == unmix::Loss::kl ? "mu" : a.solver);
  const arma::uword smaller = std::min(p.n_samples, p.n_features);
  o.init = a.init.empty() ? (p.k <= smaller ? unmix::Init::nndsvda : unmix::Init::random)
                          : unmix::parse_init(a.init);
  if (o.init != unmix::Init::random && p.k > smaller)
    throw UsageError("-k must be <= min(n_samples, n_features) = " + std::to_string(smaller) +
                     " for --init " + unmix::to_string(o.init) +
                     " (use --init random for more components), got " + std::to_string(p.k));
  o.max_iter = int(a.max_iter);
  o.tol = a.tol;
  o.time_limit = a.time_limit;
  o.seed = a.seed;
  o.threads = a.threads;
  o.transposed = p.transposed;
  o.extrapolate = a.extrapolate;
  // The penalties name the user's factors: with M = X^T the core's W holds
  // the features (the user's H) and its H the samples (the user's W).
  unmix::FactorOptions& samples = p.transposed ? o.H : o.W;
  unmix::FactorOptions& features = p.transposed ? o.W : o.H;
  samples.l1 = a.l1_W;
  samples.l2 = a.l2_W;
  features.l1 = a.l1_H;
  features.l2 = a.l2_H;
  samples.simplex = a.sum_to_one;
  samples.lower = a.lower_W;
  samples.upper = a.upper_W;
  features.lower = a.lower_H;
  features.upper = a.upper_H;
  samples.name = "W";
  features.name = "H";
  features.minvol = a.minvol_H;
  if (a.smooth_W > 0 && a.graph_ny == 0)
    throw UsageError("--smooth-W needs --graph-W grid:NYxNX");
  if (a.graph_ny > 0) {
    if (a.graph_ny * a.graph_nx != p.n_samples)
      throw UsageError("--graph-W grid:" + std::to_string(a.graph_ny) + "x" + std::to_string(a.graph_nx) +
                       " has " + std::to_string(a.graph_ny * a.graph_nx) + " pixels, but the data has " +
                       std::to_string(p.n_samples) + " samples");
    samples.graph = std::make_shared<const arma::sp_mat>(
        unmix::regularize::grid_graph(a.graph_ny, a.graph_nx, a.graph_connectivity));
    samples.smooth = a.smooth_W;
  }
  if (!a.fixed_H.empty()) {
    // Known spectra: rows of H, i.e. columns of the features factor.
    const arma::mat E = unmix::io::read_npy<double>(a.fixed_H);
    if (E.n_cols != p.n_features || E.n_rows == 0 || E.n_rows >= p.k)
      throw std::invalid_argument("--fixed-H '" + a.fixed_H + "' must hold (n_known, " +
                                  std::to_string(p.n_features) + ") with 1 <= n_known < k = " +
                                  std::to_string(p.k) + ", got " + shape_text(E.n_rows, E.n_cols));
    // Checked here, where the file is known: the core would name only the
    // option it was handed on (H.fixed_values).
    unmix::DataStats stats;
    for (const double x : E) unmix::accumulate(stats, x);
    unmix::detail::check_data<double>(stats, "--fixed-H '" + a.fixed_H + "'");
    for (arma::uword c = 0; c < E.n_rows; ++c) features.fixed_cols.push_back(c);
    features.fixed_values = E.t();
  }
  return p;
}

// The core takes the known spectra of this rank's rows of the features
// factor only.
template <typename Comm>
void keep_own_rows(Problem& p, const Comm& comm) {
  unmix::FactorOptions& features = p.transposed ? p.opt.W : p.opt.H;
  if (features.fixed_cols.empty()) return;
  const unmix::comm::Range own = p.transposed ? comm.W_rows(p.m) : comm.H_rows(p.n);
  features.fixed_values = own.count ? arma::mat(features.fixed_values.rows(own.first, own.first + own.count - 1))
                                    : arma::mat(0, features.fixed_cols.size());
}

struct Outputs {
  std::string W, H, summary;
};

Outputs output_files(const std::string& prefix) {
  return {prefix + "_W.npy", prefix + "_H.npy", prefix + ".json"};
}

// Rank 0 checks that the outputs can be written before hours of compute.
void check_output(const std::string& prefix) {
  namespace fs = std::filesystem;
  const fs::path target(output_files(prefix).summary);
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw UsageError("-o " + prefix + ": the output folder '" + folder.string() +
                     "' does not exist");
}

}  // namespace unmix_nmf
