// unmix-nmf: non-negative matrix factorization of a matrix in a file (or a
// generated one) on one process, or under mpirun on an MPI-FAUN process grid
// where every rank reads and holds only its block of the matrix.
//
// Every failure ends with one message (printed by rank 0) and the same
// non-zero exit status on every rank: after each phase that can fail, the
// ranks agree on whether any of them did (Team::agree), so that no rank is
// left waiting in a collective for a rank that has given up.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unmix.hpp>
#include <unmix/comm/grid_shape.hpp>
#include <unmix/io/atomic_file.hpp>
#include <unmix/io/generate.hpp>
#include <unmix/io/mtx.hpp>
#include <unmix/io/npy.hpp>

#ifdef UNMIX_HAS_MPI
#include <mpi.h>

#include <unmix/comm/mpi_grid.hpp>
#endif

namespace {

constexpr const char* prog = "unmix-nmf";
constexpr int exit_ok = 0;
constexpr int exit_failed = 1;  // the run itself failed (numerics, writing, memory)
constexpr int exit_usage = 2;   // bad command line or bad input
constexpr double inf = std::numeric_limits<double>::infinity();
// How long a rank that failed alone waits for the others before aborting the
// job. Failures that every rank sees (bad input, non-finite objective) are
// agreed on within moments; only a failure of one rank inside a collective
// phase (out of memory, say) leaves the others waiting, and then the job is
// ended with MPI_Abort instead of hanging.
constexpr double lone_failure_timeout = 60.0;

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// ---------------------------------------------------------------- status

struct Status {
  bool ok = true;
  int code = exit_ok;
  std::string message;
  bool usage = false;  // add the pointer to --help
};

Status failure(int code, const std::string& message, bool usage = false) {
  return Status{false, code, message, usage};
}

// Library messages start with the function that threw ("unmix::io::read_npy:
// "); on the command line the program name says enough.
std::string strip_origin(std::string m) {
  if (m.rfind("unmix", 0) == 0) {
    const std::size_t colon = m.find(": ");
    if (colon != std::string::npos && m.find(' ') > colon) m = m.substr(colon + 2);
  }
  return m;
}

// ---------------------------------------------------------------- the team of ranks

class Team {
 public:
#ifdef UNMIX_HAS_MPI
  Team() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
#endif
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }

  // The status of the lowest failing rank, on every rank; rank 0 prints its
  // message. A rank that failed on its own gives up after `timeout` seconds
  // and aborts the job rather than wait for ranks stuck elsewhere.
  Status agree(const Status& local, double timeout = inf) const {
    Status s = local;
#ifdef UNMIX_HAS_MPI
    int mine = local.ok ? size_ : rank_, lowest = size_;
    MPI_Request req;
    MPI_Iallreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &req);
    if (local.ok || !std::isfinite(timeout)) {
      MPI_Wait(&req, MPI_STATUS_IGNORE);
    } else {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
      int done = 0;
      while (MPI_Test(&req, &done, MPI_STATUS_IGNORE), !done) {
        if (std::chrono::steady_clock::now() > deadline) {
          std::fprintf(stderr, "%s: error on rank %d: %s\n%s: the other ranks did not respond "
                               "within %.0f s; aborting the job\n",
                       prog, rank_, local.message.c_str(), prog, timeout);
          std::fflush(stderr);
          MPI_Abort(MPI_COMM_WORLD, local.code);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    if (lowest == size_) return {};
    int code = local.code, usage = local.usage ? 1 : 0;
    unsigned long long len = local.message.size();
    MPI_Bcast(&code, 1, MPI_INT, lowest, MPI_COMM_WORLD);
    MPI_Bcast(&usage, 1, MPI_INT, lowest, MPI_COMM_WORLD);
    MPI_Bcast(&len, 1, MPI_UNSIGNED_LONG_LONG, lowest, MPI_COMM_WORLD);
    std::string text(std::size_t(len), ' ');
    if (rank_ == lowest) text = local.message;
    MPI_Bcast(text.data(), int(len), MPI_CHAR, lowest, MPI_COMM_WORLD);
    s = failure(code, text, usage != 0);
    if (size_ > 1 && lowest != 0) s.message += " (on rank " + std::to_string(lowest) + ")";
#else
    (void)timeout;  // a single process has nobody to wait for
#endif
    if (!s.ok && root()) {
      std::fprintf(stderr, "%s: error: %s\n", prog, s.message.c_str());
      if (s.usage) std::fprintf(stderr, "Try '%s --help' for the options.\n", prog);
      std::fflush(stderr);
    }
    return s;
  }

 private:
  int rank_ = 0, size_ = 1;
};

// ---------------------------------------------------------------- command line

struct Args {
  std::string input;
  bool generate = false;
  arma::uword gen_rows = 0, gen_cols = 0;
  double density = 1.0;
  long long gen_rank = 10;
  double noise = 0.01;
  long long k = 0;
  bool k_given = false;
  std::string solver = "bpp";
  std::string init;  // empty: as unmix.nmf chooses
  long long max_iter = 500;
  double tol = 1e-5;
  double time_limit = inf;
  std::uint64_t seed = 0;
  double l1_W = 0, l1_H = 0, l2_W = 0, l2_H = 0;
  int grid_r = 0, grid_c = 0;  // 0: choose
  std::string dtype;           // empty: the input's
  std::string prefix = "unmix";
  bool quiet = false;
  long long print_every = 1;
  bool help = false, version = false;
  std::string command;  // as typed, for the summary
};

void print_help() {
  std::string solvers, inits;
  for (const auto& e : unmix::solver_table)
    solvers += std::string("                             ") + e.name + ": " + e.summary + "\n";
  for (const auto& e : unmix::init_table)
    if (e.value != unmix::Init::custom)
      inits += std::string("                             ") + e.name + ": " + e.summary + "\n";
  std::printf(
      "usage: unmix-nmf [options] -k K FILE\n"
      "       unmix-nmf [options] -k K --generate MxN [--density D] [--rank R] [--noise X]\n"
      "       mpirun -np P unmix-nmf [options] ...\n"
      "\n"
      "Non-negative matrix factorization X ~= W H of a matrix X (n_samples x n_features),\n"
      "minimizing 1/2 ||X - W H||_F^2 + l1_W |W|_1 + l2_W/2 ||W||_F^2 + l1_H |H|_1 + l2_H/2 ||H||_F^2\n"
      "with W, H >= 0. Run serially or under mpirun: the ranks form a PR x PC grid (MPI-FAUN),\n"
      "each reads only its block of the matrix, and the result equals the serial one to\n"
      "rounding for the same seed. The option names follow unmix.nmf in Python.\n"
      "\n"
      "Input (one of):\n"
      "  FILE, -i, --input FILE   .npy: a 2-D float64 or float32 array, C or Fortran order\n"
      "                           (a C-ordered X is read as M = X^T without a copy).\n"
      "                           .mtx: MatrixMarket coordinate, real/integer/pattern,\n"
      "                           general/symmetric (sparse; every rank parses the text).\n"
      "  --generate MxN           a seeded random M x N matrix instead of a file:\n"
      "                           W H^T of rank R plus uniform noise; each rank generates\n"
      "                           its own block, the same matrix on any grid\n"
      "  --density D              fraction of the generated entries kept, in (0, 1]; below 1\n"
      "                           the matrix is sparse (default: 1, dense)\n"
      "  --rank R                 rank of the generated matrix (default: 10)\n"
      "  --noise X                noise of the generated matrix, relative to its mean entry\n"
      "                           (default: 0.01)\n"
      "  --dtype float64|float32  precision of the computation (default: the .npy's dtype;\n"
      "                           float64 for .mtx and --generate)\n"
      "\n"
      "Factorization:\n"
      "  -k, --n-components K     number of components, >= 1 (required)\n"
      "  --solver NAME            (default: bpp)\n%s"
      "  --init NAME              (default: nndsvda when K <= min(n_samples, n_features),\n"
      "                           else random)\n%s"
      "  --max-iter N             maximum number of iterations (default: 500)\n"
      "  --tol T                  stop when an iteration lowers the objective by less than\n"
      "                           T times its value, or when ||X - WH|| <= T ||X||\n"
      "                           (default: 1e-05)\n"
      "  --time-limit S           stop after S seconds (default: none)\n"
      "  --seed S                 seed of the initialization and of --generate (default: 0)\n"
      "  --l1-W, --l1-H, --l2-W, --l2-H X\n"
      "                           penalty weights, >= 0 (default: 0)\n"
      "\n"
      "Parallel:\n"
      "  --grid PRxPC             process grid over the rows x columns of M, the matrix the\n"
      "                           core factors (M = X^T for a C-ordered .npy, else X);\n"
      "                           PR * PC must equal the number of ranks (default: the grid\n"
      "                           with the least communication, P x 1 for tall M)\n"
      "\n"
      "Output:\n"
      "  -o, --output PREFIX      write PREFIX_W.npy (n_samples x K), PREFIX_H.npy\n"
      "                           (K x n_features), both C order in the computation's dtype,\n"
      "                           and PREFIX.json; the folder must exist (default: unmix)\n"
      "  --quiet                  no progress lines (errors are still printed)\n"
      "  --print-every N          a progress line every N iterations (default: 1)\n"
      "  -h, --help               this help\n"
      "  --version                the version and whether MPI is built in\n"
      "\n"
      "PREFIX.json holds the settings (input, shape, k, solver, init, grid, ranks, dtype),\n"
      "n_iter, converged, stop_reason, the objective and rel_error histories ([0] at the\n"
      "initialization), timings in seconds (the maximum over ranks: total fit time; init;\n"
      "communication, the time in MPI collectives; compute = total - init - communication;\n"
      "read; write) and the words each rank communicated per iteration.\n"
      "\n"
      "Exit status: 0 on success, 2 for a bad command line or bad input, 1 when the run\n"
      "fails. Every rank exits with the same status; only rank 0 prints.\n",
      solvers.c_str(), inits.c_str());
}

long long parse_int(const std::string& opt, const std::string& text, long long min) {
  const char* s = text.c_str();
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE)
    throw UsageError(opt + " must be an integer, got '" + text + "'");
  if (v < min)
    throw UsageError(opt + " must be >= " + std::to_string(min) + ", got " + text);
  return v;
}

double parse_real(const std::string& opt, const std::string& text) {
  const char* s = text.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  if (text.empty() || *end != '\0' || errno == ERANGE || std::isnan(v))
    throw UsageError(opt + " must be a number, got '" + text + "'");
  return v;
}

double parse_nonneg(const std::string& opt, const std::string& text) {
  const double v = parse_real(opt, text);
  if (!(v >= 0) || !std::isfinite(v))
    throw UsageError(opt + " must be finite and >= 0, got " + text);
  return v;
}

// "4x2" -> (4, 2)
std::pair<unsigned long long, unsigned long long> parse_shape(const std::string& opt,
                                                              const std::string& text) {
  const std::size_t x = text.find_first_of("xX");
  auto part = [&](const std::string& p) {
    const char* s = p.c_str();
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (p.empty() || *end != '\0' || *s == '-' || *s == '+' || errno == ERANGE || v == 0)
      throw UsageError(opt + " must be two positive integers like 4x2, got '" + text + "'");
    return v;
  };
  if (x == std::string::npos)
    throw UsageError(opt + " must be two positive integers like 4x2, got '" + text + "'");
  return {part(text.substr(0, x)), part(text.substr(x + 1))};
}

// "unmix: solver must be one of ..., got 'x'" -> "--solver must be ..."
template <typename Fn>
void check_name(const std::string& opt, Fn&& parse) {
  try {
    parse();
  } catch (const std::invalid_argument& e) {
    std::string m = e.what();
    const std::size_t must = m.find(" must be ");
    throw UsageError(opt + (must == std::string::npos ? ": " + m : m.substr(must)));
  }
}

Args parse_args(int argc, char** argv) {
  Args a;
  a.command = prog;
  for (int i = 1; i < argc; ++i) a.command += std::string(" ") + argv[i];
  std::vector<std::string> positional;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    std::string name = arg, value;
    bool has_value = false;
    if (arg.rfind("--", 0) == 0) {
      const std::size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        has_value = true;
      }
    } else if (arg.size() > 2) {  // -k5, -oout
      name = arg.substr(0, 2);
      value = arg.substr(2);
      has_value = true;
    }
    auto flag = [&]() {
      if (has_value) throw UsageError("option " + name + " takes no value, got '" + value + "'");
    };
    auto next = [&]() -> std::string {
      if (has_value) return value;
      // "-k --quiet" means a forgotten value, not k = "--quiet"; negative
      // numbers still pass, to be refused with the option's own message.
      const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
      if (v == nullptr || (v[0] == '-' && v[1] != '\0' && !std::isdigit(static_cast<unsigned char>(v[1])) && v[1] != '.'))
        throw UsageError("option " + name + " needs a value");
      return argv[++i];
    };
    if (name == "-h" || name == "--help") {
      flag();
      a.help = true;
    } else if (name == "--version") {
      flag();
      a.version = true;
    } else if (name == "-i" || name == "--input") {
      if (!a.input.empty()) throw UsageError("only one input may be given, got -i twice");
      a.input = next();
      if (a.input.empty()) throw UsageError(name + " must name a file, got ''");
    } else if (name == "--generate") {
      const auto [r, c] = parse_shape(name, next());
      a.generate = true;
      a.gen_rows = arma::uword(r);
      a.gen_cols = arma::uword(c);
    } else if (name == "--density") {
      a.density = parse_real(name, next());
      if (!(a.density > 0 && a.density <= 1))
        throw UsageError("--density must be in (0, 1], got " + std::string(argv[i]));
    } else if (name == "--rank") {
      a.gen_rank = parse_int(name, next(), 1);
    } else if (name == "--noise") {
      a.noise = parse_nonneg(name, next());
    } else if (name == "-k" || name == "--n-components") {
      a.k = parse_int("-k", next(), 1);
      a.k_given = true;
    } else if (name == "--solver") {
      a.solver = next();
      check_name(name, [&] { unmix::parse_solver(a.solver); });
    } else if (name == "--init") {
      a.init = next();
      check_name(name, [&] { unmix::parse_init(a.init); });
      if (a.init == "custom")
        throw UsageError("--init custom needs starting factors, which unmix-nmf does not read; "
                         "use nndsvda, nndsvd, nndsvdar or random");
    } else if (name == "--max-iter") {
      a.max_iter = parse_int(name, next(), 1);
      if (a.max_iter > std::numeric_limits<int>::max())
        throw UsageError("--max-iter must be at most " +
                         std::to_string(std::numeric_limits<int>::max()) + ", got " + argv[i]);
    } else if (name == "--tol") {
      a.tol = parse_nonneg(name, next());
    } else if (name == "--time-limit") {
      a.time_limit = parse_real(name, next());
      if (!(a.time_limit > 0)) throw UsageError("--time-limit must be > 0 seconds, got " + std::string(argv[i]));
    } else if (name == "--seed") {
      const std::string text = next();
      char* end = nullptr;
      errno = 0;
      a.seed = std::strtoull(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || text[0] == '-' || text[0] == '+' || errno == ERANGE)
        throw UsageError("--seed must be an integer in [0, 2^64), got '" + text + "'");
    } else if (name == "--l1-W") {
      a.l1_W = parse_nonneg(name, next());
    } else if (name == "--l1-H") {
      a.l1_H = parse_nonneg(name, next());
    } else if (name == "--l2-W") {
      a.l2_W = parse_nonneg(name, next());
    } else if (name == "--l2-H") {
      a.l2_H = parse_nonneg(name, next());
    } else if (name == "--grid") {
      const auto [r, c] = parse_shape(name, next());
      if (r > 1u << 20 || c > 1u << 20) throw UsageError("--grid is too large, got " + std::string(argv[i]));
      a.grid_r = int(r);
      a.grid_c = int(c);
    } else if (name == "--dtype") {
      a.dtype = next();
      if (a.dtype != "float64" && a.dtype != "float32")
        throw UsageError("--dtype must be 'float64' or 'float32', got '" + a.dtype + "'");
    } else if (name == "-o" || name == "--output") {
      a.prefix = next();
      if (a.prefix.empty() || a.prefix.back() == '/')
        throw UsageError(name + " must be a file prefix like 'results/run1', got '" + a.prefix + "'");
    } else if (name == "--quiet" || name == "-q") {
      flag();
      a.quiet = true;
    } else if (name == "--print-every") {
      a.print_every = parse_int(name, next(), 1);
    } else {
      throw UsageError("unknown option '" + name + "'");
    }
  }
  if (a.help || a.version) return a;
  if (positional.size() > 1)
    throw UsageError("only one input file may be given, got '" + positional[0] + "' and '" +
                     positional[1] + "'");
  if (!positional.empty()) {
    if (!a.input.empty())
      throw UsageError("only one input may be given, got '" + a.input + "' and '" + positional[0] + "'");
    a.input = positional[0];
  }
  if (a.generate && !a.input.empty())
    throw UsageError("give an input file or --generate, not both");
  if (!a.generate && a.input.empty())
    throw UsageError("an input file (FILE or -i FILE) or --generate MxN is required");
  if (!a.k_given) throw UsageError("-k (the number of components) is required");
  return a;
}

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
    throw std::invalid_argument("the input must be a non-empty matrix, got shape " +
                                shape_text(p.n_samples, p.n_features));
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
  o.solver = unmix::parse_solver(a.solver);
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
  o.transposed = p.transposed;
  // The penalties name the user's factors: with M = X^T the core's W holds
  // the features (the user's H) and its H the samples (the user's W).
  unmix::FactorOptions& samples = p.transposed ? o.H : o.W;
  unmix::FactorOptions& features = p.transposed ? o.W : o.H;
  samples.l1 = a.l1_W;
  samples.l2 = a.l2_W;
  features.l1 = a.l1_H;
  features.l2 = a.l2_H;
  return p;
}

// Rank 0 checks that the outputs can be written before hours of compute.
void check_output(const std::string& prefix) {
  namespace fs = std::filesystem;
  const fs::path target(prefix + ".json");
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw UsageError("-o " + prefix + ": the output folder '" + folder.string() +
                     "' does not exist");
}

// ---------------------------------------------------------------- communicator-specific parts

struct CommFacts {
  double seconds = 0, words = 0;
};

// Each communicator offers: this rank's block of M, the owned factor rows
// gathered on rank 0 as F^T (k x rows: each global row one contiguous column,
// which is also the C-order layout of the rows x k matrix), and the MPI time
// and words so far.
#ifdef UNMIX_HAS_MPI
using Comm = unmix::comm::MpiGrid;

unmix::comm::Range block_rows(const Comm& g, const Problem&) { return g.block_rows(); }
unmix::comm::Range block_cols(const Comm& g, const Problem&) { return g.block_cols(); }
CommFacts comm_facts(const Comm& g) { return {g.stats().seconds, g.stats().words()}; }

template <typename eT>
arma::Mat<eT> gather_rows(const Comm& g, const arma::Mat<eT>& F, arma::uword total,
                          unmix::comm::Range mine) {
  const std::size_t p = std::size_t(g.size());
  const arma::uword k = F.n_cols;
  unsigned long long local[2] = {mine.first, mine.count};
  std::vector<unsigned long long> all(2 * p);
  MPI_Gather(local, 2, MPI_UNSIGNED_LONG_LONG, all.data(), 2, MPI_UNSIGNED_LONG_LONG, 0, g.world());
  if (total > arma::uword(std::numeric_limits<int>::max()))
    throw std::runtime_error("cannot gather " + std::to_string(total) +
                             " factor rows: MPI counts are limited to 2^31 - 1 rows");
  // One row of k values is one element, so the counts are row counts.
  MPI_Datatype row;
  MPI_Type_contiguous(int(k), unmix::comm::mpi_type<eT>(), &row);
  MPI_Type_commit(&row);
  std::vector<int> counts(p, 0), displs(p, 0);
  for (std::size_t q = 0; q < p; ++q) {
    displs[q] = int(all[2 * q]);
    counts[q] = int(all[2 * q + 1]);
  }
  const arma::Mat<eT> send = F.t();
  arma::Mat<eT> out;
  if (g.rank() == 0) out.set_size(k, total);
  MPI_Gatherv(send.memptr(), int(mine.count), row, g.rank() == 0 ? out.memptr() : nullptr,
              counts.data(), displs.data(), row, 0, g.world());
  MPI_Type_free(&row);
  return out;
}
template <typename eT>
arma::Mat<eT> gather_W(const Comm& g, const arma::Mat<eT>& W, arma::uword m) {
  return gather_rows(g, W, m, g.W_rows(m));
}
template <typename eT>
arma::Mat<eT> gather_H(const Comm& g, const arma::Mat<eT>& H, arma::uword n) {
  return gather_rows(g, H, n, g.H_rows(n));
}
#else
using Comm = unmix::comm::Serial;

unmix::comm::Range block_rows(const Comm&, const Problem& p) { return {0, p.m}; }
unmix::comm::Range block_cols(const Comm&, const Problem& p) { return {0, p.n}; }
CommFacts comm_facts(const Comm&) { return {}; }
template <typename eT>
arma::Mat<eT> gather_W(const Comm&, const arma::Mat<eT>& W, arma::uword) { return W.t(); }
template <typename eT>
arma::Mat<eT> gather_H(const Comm&, const arma::Mat<eT>& H, arma::uword) { return H.t(); }
#endif

// Reductions to rank 0 (identities on one process).
std::vector<double> reduce_to_root(const std::vector<double>& v, bool max) {
#ifdef UNMIX_HAS_MPI
  std::vector<double> out(v.size());
  MPI_Reduce(v.data(), out.data(), int(v.size()), MPI_DOUBLE, max ? MPI_MAX : MPI_SUM, 0,
             MPI_COMM_WORLD);
  return out;
#else
  (void)max;
  return v;
#endif
}

std::vector<double> gather_to_root(double x, const Team& team) {
  std::vector<double> all(std::size_t(team.size()), x);
#ifdef UNMIX_HAS_MPI
  MPI_Gather(&x, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
#endif
  return all;
}

// ---------------------------------------------------------------- the summary

std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";  // JSON has no NaN or infinity
  // The shortest of %.15g .. %.17g that reads back as x (1e-05, not
  // 1.0000000000000001e-05).
  char buf[32];
  for (int digits = 15; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_array(const std::vector<double>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + json_number(v[i]);
  return out + "]";
}

// Key-value pairs in the order added, one per line.
class JsonObject {
 public:
  JsonObject& add(const std::string& key, const std::string& raw_value) {
    items_.push_back(json_string(key) + ": " + raw_value);
    return *this;
  }
  JsonObject& add(const std::string& key, double x) { return add(key, json_number(x)); }
  JsonObject& add_int(const std::string& key, long long x) { return add(key, std::to_string(x)); }
  JsonObject& add_bool(const std::string& key, bool x) { return add(key, x ? "true" : "false"); }
  JsonObject& add_str(const std::string& key, const std::string& x) { return add(key, json_string(x)); }
  std::string str(const std::string& indent = "") const {
    std::string out = "{";
    for (std::size_t i = 0; i < items_.size(); ++i)
      out += (i ? ",\n" : "\n") + indent + "  " + items_[i];
    return out + "\n" + indent + "}";
  }

 private:
  std::vector<std::string> items_;
};

// ---------------------------------------------------------------- the run

struct Guard {
  int invalid_code, other_code;
};

template <typename Fn>
Status guarded(Guard g, Fn&& fn) {
  try {
    fn();
    return {};
  } catch (const UsageError& e) {
    return failure(exit_usage, e.what(), true);
  } catch (const std::invalid_argument& e) {
    return failure(g.invalid_code, strip_origin(e.what()));
  } catch (const std::bad_alloc&) {
    return failure(exit_failed, "out of memory");
  } catch (const std::exception& e) {
    return failure(g.other_code, strip_origin(e.what()));
  } catch (...) {
    return failure(exit_failed, "unknown error");
  }
}
constexpr Guard input_phase{exit_usage, exit_usage};  // anything wrong here is the input's fault
constexpr Guard fit_phase{exit_usage, exit_failed};
constexpr Guard output_phase{exit_failed, exit_failed};

const char* source_name(Source s) {
  switch (s) {
    case Source::npy: return "npy";
    case Source::mtx: return "mtx";
    case Source::generate: return "generate";
  }
  return "unknown";
}

template <typename eT>
int fit(const Args& a, const Problem& p, const Comm& comm, const Team& team,
        const unmix::Stopwatch& wall) {
  namespace io = unmix::io;
  const unmix::comm::Range rows = block_rows(comm, p), cols = block_cols(comm, p);
  const bool root = team.root();
  const bool show = root && !a.quiet;

  // Each rank reads (or generates) only its block of M.
  arma::Mat<eT> dense;
  arma::SpMat<eT> sparse;
  double read_seconds = 0, local_nnz = 0;
  Status st = guarded(input_phase, [&] {
    const unmix::Stopwatch clock;
    switch (p.source) {
      case Source::npy:
        // C order: M = X^T, and M's block (rows, cols) is X's block
        // (cols, rows) transposed, which is how the file holds it.
        dense = p.transposed ? io::read_npy_block<eT>(p.npy, cols, rows, true)
                             : io::read_npy_block<eT>(p.npy, rows, cols, false);
        break;
      case Source::mtx:
        sparse = io::read_mtx_block<eT>(p.mtx, rows, cols);
        break;
      case Source::generate:
        if (p.sparse)
          sparse = io::generate_sparse<eT>(p.gen, rows, cols);
        else
          dense = io::generate_dense<eT>(p.gen, rows, cols);
        break;
    }
    local_nnz = p.sparse ? double(sparse.n_nonzero) : double(dense.n_elem);
    read_seconds = clock.seconds();
  });
  st = team.agree(st);
  if (!st.ok) return st.code;

  if (show) {
    std::string what;
    if (p.source == Source::generate)
      what = "generated " + std::string(p.sparse ? "sparse" : "dense") + " X (rank " +
             std::to_string(p.gen.rank) + ", density " + json_number(p.gen.density) + ")";
    else
      what = "'" + a.input + "'" +
             (p.source == Source::npy ? (p.npy.fortran_order ? " (Fortran order)" : " (C order)")
                                      : " (sparse)");
    std::printf("%s %s: %s, %s %s, k %llu, solver %s, init %s, grid %dx%d on %d rank%s\n", prog,
                unmix::version, what.c_str(), shape_text(p.n_samples, p.n_features).c_str(),
                p.dtype.c_str(), static_cast<unsigned long long>(p.k), unmix::to_string(p.opt.solver),
                unmix::to_string(p.opt.init), p.pr, p.pc, team.size(), team.size() == 1 ? "" : "s");
    std::printf("%6s  %-22s  %-12s  %s\n", "iter", "objective", "rel_error", "seconds");
    std::fflush(stdout);
  }

  // The words counted between the first and the last iteration are exactly
  // the iterations' own, without the initialization's.
  int it_first = 0, it_last = 0;
  double words_first = 0, words_last = 0;
  const unmix::Callback progress = [&](const unmix::Progress& pr) {
    const double w = comm_facts(comm).words;
    if (it_first == 0) {
      it_first = pr.iteration;
      words_first = w;
    }
    it_last = pr.iteration;
    words_last = w;
    if (show && (pr.iteration == 1 || pr.iteration % a.print_every == 0)) {
      std::printf("%6d  %-22.15e  %-12.6e  %.3f\n", pr.iteration, pr.objective, pr.rel_error,
                  pr.elapsed);
      std::fflush(stdout);
    }
    return false;
  };

  unmix::Result<eT> res;
  st = guarded(fit_phase, [&] {
    if (p.sparse)
      res = unmix::nmf(unmix::data::Sparse<eT>(sparse), comm, p.m, p.n, p.k, p.opt, nullptr,
                       nullptr, progress);
    else
      res = unmix::nmf(unmix::data::Dense<eT>(dense), comm, p.m, p.n, p.k, p.opt, nullptr,
                       nullptr, progress);
  });
  st = team.agree(st, lone_failure_timeout);
  if (!st.ok) return st.code;
  dense.reset();
  sparse.reset();

  // Factors to rank 0, in scikit-learn's orientation: W (n_samples x k) and
  // H (k x n_features). Gathered rows come as F^T (k x rows).
  arma::Mat<eT> W, H;
  st = guarded(output_phase, [&] {
    arma::Mat<eT> Wt = gather_W(comm, res.W, p.m);
    arma::Mat<eT> Ht = gather_H(comm, res.H, p.n);
    res.W.reset();
    res.H.reset();
    if (root) {
      if (p.transposed) {  // core W holds the features, core H the samples
        W = Ht.t();
        H = std::move(Wt);
      } else {
        W = Wt.t();
        H = std::move(Ht);
      }
    }
  });
  st = team.agree(st, lone_failure_timeout);
  if (!st.ok) return st.code;

  const CommFacts cf = comm_facts(comm);
  const double words_per_iter =
      it_last > it_first ? (words_last - words_first) / double(it_last - it_first)
                         : (res.n_iter > 0 ? cf.words / double(res.n_iter) : 0.0);
  const unmix::Timings& t = res.timings;
  const std::vector<double> mx = reduce_to_root(
      {read_seconds, t.total, t.init, cf.seconds, std::max(0.0, t.total - t.init - cf.seconds),
       t.products, t.gram, t.update},
      true);
  const std::vector<double> sums = reduce_to_root({local_nnz}, false);
  const std::vector<double> words = gather_to_root(words_per_iter, team);

  st = guarded(output_phase, [&] {
    if (!root) return;
    const unmix::Stopwatch clock;
    const std::string W_path = a.prefix + "_W.npy", H_path = a.prefix + "_H.npy";
    io::write_npy(W_path, W);
    io::write_npy(H_path, H);
    const double write_seconds = clock.seconds();

    JsonObject input;
    input.add_str("format", source_name(p.source));
    if (p.source == Source::generate) {
      input.add("shape", "[" + std::to_string(p.gen.m) + ", " + std::to_string(p.gen.n) + "]")
          .add_int("rank", (long long)p.gen.rank)
          .add("density", p.gen.density)
          .add("noise", p.gen.noise)
          .add_int("seed", (long long)p.gen.seed);
    } else {
      input.add_str("path", a.input);
      if (p.source == Source::npy)
        input.add_str("dtype", p.npy.dtype()).add_bool("fortran_order", p.npy.fortran_order);
      else
        input.add_int("entries", (long long)p.mtx.entries).add_bool("symmetric", p.mtx.symmetric);
    }
    JsonObject penalties;
    penalties.add("l1_W", a.l1_W).add("l1_H", a.l1_H).add("l2_W", a.l2_W).add("l2_H", a.l2_H);
    JsonObject timings;
    timings.add("total", mx[1])
        .add("init", mx[2])
        .add("compute", mx[4])
        .add("communication", mx[3])
        .add("read", mx[0])
        .add("write", write_seconds)
        .add("products", mx[5])
        .add("gram", mx[6])
        .add("update", mx[7])
        .add("wall", wall.seconds());
    JsonObject outputs;
    outputs.add_str("W", W_path).add_str("H", H_path);

    JsonObject j;
    j.add_str("version", unmix::version)
        .add_str("command", a.command)
        .add("input", input.str("  "))
        .add("shape", "[" + std::to_string(p.n_samples) + ", " + std::to_string(p.n_features) + "]")
        .add_bool("sparse", p.sparse)
        .add("nnz", sums[0])
        .add_int("k", (long long)p.k)
        .add_str("solver", unmix::to_string(p.opt.solver))
        .add_str("init", unmix::to_string(p.opt.init))
        .add_int("max_iter", p.opt.max_iter)
        .add("tol", p.opt.tol)
        .add("time_limit", p.opt.time_limit)
        .add_int("seed", (long long)p.opt.seed)
        .add("penalties", penalties.str("  "))
        .add("grid", "[" + std::to_string(p.pr) + ", " + std::to_string(p.pc) + "]")
        .add_int("ranks", team.size())
        .add_str("dtype", p.dtype)
        .add_bool("transposed", p.transposed)
        .add_int("n_iter", res.n_iter)
        .add_bool("converged", res.converged)
        .add_str("stop_reason", unmix::to_string(res.stop_reason))
        .add("data_norm", res.data_norm)
        .add("objective", json_array(res.objective))
        .add("rel_error", json_array(res.rel_error))
        .add("timings", timings.str("  "))
        .add("words_per_rank_per_iteration", json_array(words))
        .add("outputs", outputs.str("  "));
    const std::string text = j.str() + "\n";
    io::write_atomically(a.prefix + ".json", [&](std::ostream& out) { out << text; });

    if (show) {
      std::printf("stopped after %d iteration%s (%s): relative error %.6e, %.3f s (init %.3f, "
                  "communication %.3f)\n",
                  res.n_iter, res.n_iter == 1 ? "" : "s", unmix::to_string(res.stop_reason),
                  res.rel_error.empty() ? 0.0 : res.rel_error.back(), mx[1], mx[2], mx[3]);
      std::printf("wrote %s (%s), %s (%s), %s.json\n", W_path.c_str(),
                  shape_text(W.n_rows, W.n_cols).c_str(), H_path.c_str(),
                  shape_text(H.n_rows, H.n_cols).c_str(), a.prefix.c_str());
      std::fflush(stdout);
    }
  });
  st = team.agree(st);
  return st.ok ? exit_ok : st.code;
}

std::string version_text() {
  std::string s = std::string(prog) + " " + unmix::version;
#ifdef UNMIX_HAS_MPI
  int major = 0, minor = 0;
  MPI_Get_version(&major, &minor);
  s += " (with MPI " + std::to_string(major) + "." + std::to_string(minor) + ")";
#else
  s += " (serial: built without MPI)";
#endif
  return s;
}

int run(int argc, char** argv) {
  const unmix::Stopwatch wall;
  const Team team;
  Args a;
  Status st = guarded(input_phase, [&] { a = parse_args(argc, argv); });
  st = team.agree(st);
  if (!st.ok) return st.code;
  if (a.help || a.version) {
    if (team.root()) {
      if (a.help)
        print_help();
      else
        std::printf("%s\n", version_text().c_str());
      std::fflush(stdout);
    }
    return exit_ok;
  }

  Problem p;
  st = guarded(input_phase, [&] {
    p = describe(a, team.size());
    if (team.root()) check_output(a.prefix);
  });
  st = team.agree(st);
  if (!st.ok) return st.code;

#ifdef UNMIX_HAS_MPI
  // One code path for any number of ranks: a single rank is a 1 x 1 grid.
  std::unique_ptr<Comm> grid;
  st = guarded(input_phase, [&] { grid = std::make_unique<Comm>(MPI_COMM_WORLD, p.pr, p.pc, p.m, p.n); });
  st = team.agree(st);
  if (!st.ok) return st.code;
  const Comm& comm = *grid;
#else
  const Comm comm;
#endif
  return p.dtype == "float32" ? fit<float>(a, p, comm, team, wall)
                              : fit<double>(a, p, comm, team, wall);
}

}  // namespace

int main(int argc, char** argv) {
#ifdef UNMIX_HAS_MPI
  MPI_Init(&argc, &argv);
  // The communicator of a grid is freed inside run(), before MPI_Finalize.
  const int code = run(argc, argv);
  MPI_Finalize();
  return code;
#else
  return run(argc, argv);
#endif
}
