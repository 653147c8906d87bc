#pragma once
// The command line: options, --help, parsing.
// Part of the unmix-nmf program: included only by unmix_nmf.cpp.
#include "team.hpp"

namespace unmix_nmf {

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
  std::string loss = "frobenius";
  bool solver_given = false;
  long long max_iter = 500;
  double tol = 1e-5;
  double time_limit = inf;
  std::uint64_t seed = 0;
  int threads = 0;  // 0: the cores this rank may use, shared with the other ranks on its node
  double l1_W = 0, l1_H = 0, l2_W = 0, l2_H = 0;
  bool sum_to_one = false;
  bool extrapolate = false;
  double lower_W = 0, upper_W = inf, lower_H = 0, upper_H = inf;
  double minvol_H = 0, smooth_W = 0;
  arma::uword graph_ny = 0, graph_nx = 0;  // --graph-W grid:NYxNX[:8]
  int graph_connectivity = 4;
  std::string fixed_H;  // .npy of known endmember rows
  int grid_r = 0, grid_c = 0;  // 0: choose
  std::string dtype;           // empty: the input's
  std::string prefix = "unmix";
  bool quiet = false;
  long long print_every = 1;
  long long checkpoint_every = 0;  // 0: not by count
  double checkpoint_seconds = inf;
  bool resume = false;
  double watchdog = 0;  // seconds; 0: off
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
      "  --loss frobenius|kl      the data term; kl (Poisson counts) uses solver mu, the\n"
      "                           default solver with it (default: frobenius)\n"
      "  --extrapolate            extrapolation with restarts (Ang & Gillis): several times\n"
      "                           fewer iterations; the objective may rise at a restart\n"
      "                           (solvers bpp and admm)\n"
      "  --sum-to-one             every row of W (a sample's abundances) on the simplex,\n"
      "                           exactly (solvers bpp and mu)\n"
      "  --bounds-W LO,HI, --bounds-H LO,HI\n"
      "                           LO <= entries <= HI, 0 <= LO < HI, HI may be inf\n"
      "                           (solvers hals, mu and admm; with --sum-to-one: admm)\n"
      "  --graph-W grid:NYxNX[:8]  spatial smoothness of the abundances: the samples are the\n"
      "                           pixels of an NY x NX image in C order, linked to their 4\n"
      "                           (or 8) neighbours; with --smooth-W X > 0\n"
      "  --smooth-W X             weight of the smoothness, 1/2 X tr(W^T L W) (default: 0)\n"
      "  --fixed-H FILE           .npy of known endmember spectra (n_known x n_features,\n"
      "                           n_known < K): the first rows of H, held fixed\n"
      "  --minvol-H X             minimum volume, X log det(H H^T / delta + I) (solvers\n"
      "                           bpp, hals and admm; default: 0)\n"
      "\n"
      "Parallel:\n"
      "  --grid PRxPC             process grid over the rows x columns of M, the matrix the\n"
      "                           core factors (M = X^T for a C-ordered .npy, else X);\n"
      "                           PR * PC must equal the number of ranks (default: the grid\n"
      "                           with the least communication, P x 1 for tall M)\n"
      "  --threads N              threads of each rank's kernels (default: the cores of its\n"
      "                           node divided among the ranks on it, at most the cores it\n"
      "                           is bound to); the result does not depend on it\n"
      "\n"
      "Output:\n"
      "  -o, --output PREFIX      write PREFIX_W.npy (n_samples x K), PREFIX_H.npy\n"
      "                           (K x n_features), both C order in the computation's dtype,\n"
      "                           and PREFIX.json; the folder must exist (default: unmix)\n"
      "  --quiet                  no progress lines (errors are still printed)\n"
      "  --print-every N          a progress line every N iterations (default: 1)\n"
      "  --checkpoint-every N, --checkpoint-seconds S\n"
      "                           save the run's state in the folder PREFIX.ckpt every N\n"
      "                           iterations or S seconds, and when it stops; a kill at any\n"
      "                           moment leaves the previous checkpoint whole\n"
      "  --resume                 continue the run saved in PREFIX.ckpt (same input, k,\n"
      "                           settings and number of ranks; --max-iter, --tol and\n"
      "                           --time-limit may change): the result equals the\n"
      "                           uninterrupted run's, also for a run killed after its\n"
      "                           last checkpoint, before it wrote its outputs\n"
      "  --watchdog S             with several ranks: end the job, naming the rank, when\n"
      "                           one has not responded for S seconds (stopped, node down)\n"
      "                           instead of waiting for it forever; needs\n"
      "                           MPI_THREAD_MULTIPLE (default: off)\n"
      "  -h, --help               this help\n"
      "  --version                the version and whether MPI is built in\n"
      "\n"
      "PREFIX.json holds the settings (input, shape, k, solver, init, grid, ranks, dtype),\n"
      "n_iter, converged, stop_reason, the objective and rel_error histories ([0] at the\n"
      "initialization), timings in seconds (the maximum over ranks: total fit time; init;\n"
      "communication, the time in MPI collectives; compute = total - init - communication;\n"
      "read; write) and the words each rank communicated per iteration.\n"
      "\n"
      "SIGINT (Ctrl-C) or SIGTERM: the fit stops at the end of its iteration, saves its\n"
      "state in PREFIX.ckpt (checkpoints asked for or not) for --resume, and exits with\n"
      "130 or 143; a second signal ends it at once. mpirun passes a Ctrl-C on to the\n"
      "ranks as SIGTERM and kills them soon after (Open MPI: 1 s later; raise it with\n"
      "--mca odls_base_sigkill_timeout SECONDS).\n"
      "\n"
      "Exit status: 0 on success, 2 for a bad command line or bad input (ranks given\n"
      "different options or data included), 1 when the run fails, 128 + the signal's\n"
      "number when interrupted. Every rank exits with the same status; only rank 0\n"
      "prints.\n",
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
      a.solver_given = true;
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
    } else if (name == "--threads") {
      const long long t = parse_int(name, next(), 1);
      if (t > 4096) throw UsageError("--threads must be at most 4096, got " + std::string(argv[i]));
      a.threads = int(t);
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
    } else if (name == "--loss") {
      a.loss = next();
      check_name(name, [&] { unmix::parse_loss(a.loss); });
    } else if (name == "--sum-to-one") {
      a.sum_to_one = true;
    } else if (name == "--extrapolate") {
      a.extrapolate = true;
    } else if (name == "--bounds-W" || name == "--bounds-H") {
      const std::string text = next();
      const auto comma = text.find(',');
      if (comma == std::string::npos)
        throw UsageError(name + " must be LO,HI, got '" + text + "'");
      const double lo = parse_nonneg(name, text.substr(0, comma));
      const std::string hi_text = text.substr(comma + 1);
      const double hi = hi_text == "inf" ? inf : parse_nonneg(name, hi_text);
      if (!(hi > lo)) throw UsageError(name + " must have LO < HI, got '" + text + "'");
      (name == "--bounds-W" ? a.lower_W : a.lower_H) = lo;
      (name == "--bounds-W" ? a.upper_W : a.upper_H) = hi;
    } else if (name == "--minvol-H") {
      a.minvol_H = parse_nonneg(name, next());
    } else if (name == "--smooth-W") {
      a.smooth_W = parse_nonneg(name, next());
    } else if (name == "--fixed-H") {
      a.fixed_H = next();
      if (a.fixed_H.empty()) throw UsageError("--fixed-H must name a .npy file, got ''");
    } else if (name == "--graph-W") {
      std::string text = next();
      if (text.rfind("grid:", 0) != 0)
        throw UsageError("--graph-W must be grid:NYxNX or grid:NYxNX:8, got '" + text + "'");
      text = text.substr(5);
      const std::size_t colon = text.find(':');
      if (colon != std::string::npos) {
        const std::string c = text.substr(colon + 1);
        if (c != "4" && c != "8") throw UsageError("--graph-W connectivity must be 4 or 8, got '" + c + "'");
        a.graph_connectivity = c == "8" ? 8 : 4;
        text = text.substr(0, colon);
      }
      const auto [ny, nx] = parse_shape(name, text);
      a.graph_ny = arma::uword(ny);
      a.graph_nx = arma::uword(nx);
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
    } else if (name == "--checkpoint-every") {
      a.checkpoint_every = parse_int(name, next(), 1);
    } else if (name == "--checkpoint-seconds") {
      a.checkpoint_seconds = parse_real(name, next());
      if (!(a.checkpoint_seconds > 0))
        throw UsageError("--checkpoint-seconds must be > 0, got " + std::string(argv[i]));
    } else if (name == "--resume") {
      flag();
      a.resume = true;
    } else if (name == "--watchdog") {
      a.watchdog = parse_real(name, next());
      if (!(a.watchdog > 0) || !std::isfinite(a.watchdog))
        throw UsageError("--watchdog must be a finite number of seconds > 0, got " + std::string(argv[i]));
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

}  // namespace unmix_nmf
