// unmix-nmf: non-negative matrix factorization of a matrix in a file (or a
// generated one) on one process, or under mpirun on an MPI-FAUN process grid
// where every rank reads and holds only its block of the matrix.
//
// Every failure ends with one message (printed by rank 0) and the same
// non-zero exit status on every rank: after each phase that can fail, the
// ranks agree on whether any of them did (Team::agree), so that no rank is
// left waiting in a collective for a rank that has given up. The ranks
// check first that they were given the same options and data
// (agreement.hpp); a rank that stops responding is caught by --watchdog
// (watchdog.hpp); SIGINT and SIGTERM end the fit with a checkpoint
// (signals.hpp).
#include "team.hpp"
#include "args.hpp"
#include "problem.hpp"
#include "gather.hpp"
#include "summary_json.hpp"
#include "checkpoint.hpp"
#include "agreement.hpp"
#include "leftovers.hpp"
#include "signals.hpp"
#include "watchdog.hpp"

namespace unmix_nmf {

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
  if (root && p.k > std::min<unsigned long long>(p.n_samples, p.n_features))
    std::fprintf(stderr,
                 "%s: warning: k %llu is above min(n_samples, n_features) = %llu, the most X's rank "
                 "can be: the data do not determine the extra components\n",
                 prog, static_cast<unsigned long long>(p.k),
                 std::min<unsigned long long>(p.n_samples, p.n_features));

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
    // The driver ORs this over the ranks, so that all stop at this iteration.
    return stop_signal != 0;
  };

  // Checkpoints: every rank saves its rows; see checkpoint.hpp.
  const std::string folder = checkpoint_folder(a.prefix);
  const std::string key = problem_key(a, p, team.size());
  unmix::Checkpointing<eT> ck;
  unmix::State<eT> resumed;
  st = guarded(input_phase, [&] {
    if (!a.resume) return;
    resumed = load_checkpoint<eT>(folder, key, team.rank());
    if (resumed.iteration > a.max_iter)
      throw std::invalid_argument("--resume: the checkpoint '" + folder + "' holds " +
                                  std::to_string(resumed.iteration) + " iterations, more than --max-iter " +
                                  std::to_string(a.max_iter));
    ck.resume = &resumed;
  });
  st = team.agree(st);
  if (!st.ok) return st.code;
  if (show && a.resume)
    std::printf("resuming from %s at iteration %d\n", folder.c_str(), resumed.iteration);
  const bool checkpointing = a.checkpoint_every > 0 || std::isfinite(a.checkpoint_seconds);
  ck.every = int(std::min<long long>(a.checkpoint_every, std::numeric_limits<int>::max()));
  ck.seconds = a.checkpoint_seconds;
  // Also without checkpoints asked for: the driver saves when a signal has
  // stopped the run (it calls this at the end of every run).
  ck.save = [&](const unmix::State<eT>& s) {
    if (checkpointing || team.max(stop_signal) != 0) save_checkpoint(folder, key, s, team);
  };

  unmix::Result<eT> res;
  st = guarded(fit_phase, [&] {
    try {
      if (p.sparse)
        res = unmix::nmf(unmix::data::Sparse<eT>(sparse), comm, p.m, p.n, p.k, p.opt, nullptr,
                         nullptr, progress, ck);
      else
        res = unmix::nmf(unmix::data::Dense<eT>(dense), comm, p.m, p.n, p.k, p.opt, nullptr,
                         nullptr, progress, ck);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(naming_checkpoint(e.what(), folder));
    }
  });
  st = team.agree(st, lone_failure_timeout);
  if (!st.ok) return st.code;
  dense.reset();
  sparse.reset();
  if (res.stop_reason == unmix::StopReason::callback) {
    const int sig = team.max(stop_signal);
    if (root) {
      std::fprintf(stderr, "%s: interrupted by %s after iteration %d; its state is saved in '%s': "
                           "run the same command with --resume to go on\n",
                   prog, signal_name(sig), res.n_iter, folder.c_str());
      std::fflush(stderr);
    }
    return signal_exit_code(sig);
  }

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
    const Outputs files = output_files(a.prefix);
    const std::string &W_path = files.W, &H_path = files.H;
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
    penalties.add("l1_W", a.l1_W).add("l1_H", a.l1_H).add("l2_W", a.l2_W).add("l2_H", a.l2_H)
        .add("minvol_H", a.minvol_H).add("smooth_W", a.smooth_W);
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
        .add_str("loss", unmix::to_string(p.opt.loss))
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
        .add("events", [&] {
          std::string out = "[";
          for (const auto& e : res.events)
            out += (out.size() > 1 ? ", " : "") + json_string(std::to_string(e.iteration) + ": " + e.what);
          return out + "]";
        }())
        .add("timings", timings.str("  "))
        .add("words_per_rank_per_iteration", json_array(words))
        .add("outputs", outputs.str("  "));
    const std::string text = j.str() + "\n";
    io::write_atomically(files.summary, [&](std::ostream& out) { out << text; });

    if (show) {
      std::printf("stopped after %d iteration%s (%s): relative error %.6e, %.3f s (init %.3f, "
                  "communication %.3f)\n",
                  res.n_iter, res.n_iter == 1 ? "" : "s", unmix::to_string(res.stop_reason),
                  res.rel_error.empty() ? 0.0 : res.rel_error.back(), mx[1], mx[2], mx[3]);
      std::printf("wrote %s (%s), %s (%s), %s\n", W_path.c_str(),
                  shape_text(W.n_rows, W.n_cols).c_str(), H_path.c_str(),
                  shape_text(H.n_rows, H.n_cols).c_str(), files.summary.c_str());
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
  catch_stop_signals(team.size() > 1);
  Args a;
  Status st = guarded(input_phase, [&] { a = parse_args(argc, argv); });
  st = team.agree(st);
  if (!st.ok) return st.code;
  st = check_agreement(team, option_settings(a));
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

  st = guarded(input_phase, [&] {
    if (a.watchdog > 0 && team.size() > 1) Watchdog::check_supported();
  });
  st = team.agree(st);
  if (!st.ok) return st.code;
  const Watchdog watchdog(a.watchdog, team);

  Problem p;
  st = guarded(input_phase, [&] {
    p = describe(a, team.size());
    if (team.root()) check_output(a.prefix);
  });
  st = team.agree(st);
  if (!st.ok) return st.code;
  st = check_agreement(team, data_settings(p));
  if (!st.ok) return st.code;
  remove_leftovers(a.prefix, team);

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
  keep_own_rows(p, comm);
  return p.dtype == "float32" ? fit<float>(a, p, comm, team, wall)
                              : fit<double>(a, p, comm, team, wall);
}

}  // namespace unmix_nmf

int main(int argc, char** argv) {
  using namespace unmix_nmf;
  hold_stop_signals();
#ifdef UNMIX_HAS_MPI
  // The watchdog's thread calls MPI while the main thread is in a
  // collective. Only then is MPI_THREAD_MULTIPLE asked for: some transports
  // are slower with it, or refuse it. The command line is read once more in
  // run(), where its errors are reported.
  const bool watched = [&] {
    try {
      return parse_args(argc, argv).watchdog > 0;
    } catch (...) {
      return false;
    }
  }();
  int provided = 0;
  MPI_Init_thread(&argc, &argv, watched ? MPI_THREAD_MULTIPLE : MPI_THREAD_SINGLE, &provided);
  // The communicators of the grid and the watchdog are freed inside run(),
  // before MPI_Finalize.
  const int code = run(argc, argv);
  MPI_Finalize();
  return code;
#else
  return run(argc, argv);
#endif
}
