#pragma once
#include <armadillo>
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include "../comm/serial.hpp"
#include "../data/stats.hpp"
#include "../init/initialize.hpp"
#include "../parallel/blas_threads.hpp"
#include "extrapolation.hpp"
#include "factor_step.hpp"
#include "faults.hpp"
#include "fused_step.hpp"
#include "options.hpp"
#include "products.hpp"
#include "progress.hpp"
#include "result.hpp"
#include "state.hpp"
#include "timer.hpp"

namespace unmix {

// The alternating-update driver (DESIGN.md §1-3). Each half-step forms the
// Gram matrix G of the fixed factor and the data product R, lets the
// regularizers change (G, R), and hands them to the update Rule:
//
//   update W:  G = H^T H,  R = M H          update H:  G = W^T W,  R = M^T W
//
// The objective comes from the same products, never from W H^T:
//   1/2 ||M - W H^T||^2 = 1/2 (||M||^2 - 2 <F, R_raw> + <W^T W, H^T H>).
// Comm supplies the collectives (comm/serial.hpp documents the calls), so a
// single process is the 1 x 1 grid of the distributed run.
template <typename eT, template <typename> class Rule, typename Comm = comm::Serial>
class Driver {
 public:
  explicit Driver(const Options& options) : opt_(options) {}

  // m x n is the global shape; data holds this rank's block. W0 and H0 are
  // this rank's rows of the starting factors when opt.init == Init::custom.
  template <typename Data>
  Result<eT> run(const Data& data, const Comm& comm, arma::uword m, arma::uword n,
                 arma::uword k, const arma::Mat<eT>* W0, const arma::Mat<eT>* H0,
                 const Callback& callback, const Checkpointing<eT>& checkpointing = {}) const;

 private:
  Options opt_;
};

namespace detail {

// The end of the event of a component given a fresh start: a resumed run
// finds in the events whether its last iteration re-seeded one.
constexpr const char* reseeded_event = "was re-seeded";
// The words of the event of a fit that ended above its starting objective
// (the Python front turns it into a warning).
constexpr const char* rose_event = "above its starting value";

// Dense data: the H half-step can be fused with the next product
// (core/fused_step.hpp), when the grid has one row of ranks (each rank's
// block then holds whole columns of M, so its rows of M^T W are complete).
template <typename D, typename = void>
struct fusable : std::false_type {};
template <typename D>
struct fusable<D, std::void_t<decltype(std::declval<const D&>().matrix())>> : std::true_type {};

template <typename eT>
void check_data(const DataStats& s, const std::string& name) {
  if (s.n_nonfinite > 0)
    throw std::invalid_argument(name + " must be finite, got " + std::to_string(s.n_nonfinite) +
                                " entries that are NaN or infinity");
  if (s.n_negative > 0)
    throw std::invalid_argument("Negative values in data passed to " + name +
                                ": it must be non-negative, got " +
                                std::to_string(s.n_negative) +
                                " negative entries (minimum " + std::to_string(s.min) + ")");
  const double limit = data_limit<eT>();
  if (s.max_abs > 0 && (s.max_abs > limit || s.max_abs < 1 / limit)) {
    const bool single = sizeof(eT) == 4;
    std::ostringstream m;
    m << std::setprecision(2) << "unmix::nmf: the largest value of " << name << " must be between "
      << 1 / limit << " and " << limit << " in " << (single ? "float32" : "float64") << ", got "
      << s.max_abs << ": multiply " << name << " by a power of ten such as "
      << std::pow(10.0, -std::round(std::log10(s.max_abs)))
      << " (and set any penalty weights for the rescaled data)" << (single ? ", or use float64" : "");
    throw std::invalid_argument(m.str());
  }
}

}  // namespace detail

template <typename eT, template <typename> class Rule, typename Comm>
template <typename Data>
Result<eT> Driver<eT, Rule, Comm>::run(const Data& data, const Comm& comm, arma::uword m,
                                       arma::uword n, arma::uword k, const arma::Mat<eT>* W0,
                                       const arma::Mat<eT>* H0,
                                       const Callback& callback,
                                       const Checkpointing<eT>& checkpointing) const {
  const Stopwatch clock;
  Result<eT> res;
  Timings& t = res.timings;
  const int threads = opt_.threads > 0 ? opt_.threads : comm.default_threads();
  const parallel::SingleThreadedBlas blas_on_one_thread;
  Products<Data, Comm> products(data, comm, threads);

  // One pass over the data: validation, the scale of a random start, ||M||^2.
  DataStats stats = data.stats();
  {
    arma::Mat<double> s = {double(stats.n_nonfinite), double(stats.n_negative), stats.sum,
                           stats.sq_norm};
    comm.all_reduce(s);
    stats.n_nonfinite = std::size_t(s[0]);
    stats.n_negative = std::size_t(s[1]);
    stats.min = comm.min(stats.min);
    stats.max_abs = -comm.min(-stats.max_abs);
    stats.sum = s[2];
    stats.sq_norm = s[3];
  }
  detail::check_data<eT>(stats, opt_.data_name);
  const double norm2 = stats.sq_norm;
  res.data_norm = std::sqrt(norm2);

  arma::Mat<eT>& W = res.W;
  arma::Mat<eT>& H = res.H;
  const State<eT>* resume = checkpointing.resume;
  if (resume && std::abs(resume->data_norm - res.data_norm) > 1e-9 * res.data_norm)
    throw std::invalid_argument("unmix::nmf: the state to resume comes from other data (norm " +
                                std::to_string(resume->data_norm) + ", this data's " +
                                std::to_string(res.data_norm) + ")");
  {
    const ScopedTimer timer(t.init);
    if (resume) {
      // An extrapolated run goes on from where its next iteration starts.
      const bool next = opt_.extrapolate && !resume->extrapolation.empty();
      W = next ? resume->W_next : resume->W;
      H = next ? resume->H_next : resume->H;
    } else if (opt_.init == Init::custom) {
      W = *W0;
      H = *H0;
    } else {
      init::initialize(products, opt_, m, n, k, stats.sum / (double(m) * double(n)), W, H);
    }
  }

  arma::Mat<eT>* F[2] = {&W, &H};
  const FactorOptions* fopt[2] = {&opt_.W, &opt_.H};
  FactorStep<eT, Rule> step[2] = {FactorStep<eT, Rule>(opt_.W, k, threads),
                                  FactorStep<eT, Rule>(opt_.H, k, threads)};
  if constexpr (Comm::distributed) {
    step[0].distribute(comm, true, comm.W_rows(m));
    step[1].distribute(comm, false, comm.H_rows(n));
  }
  // A graph term is weighted by the other factor's column norms when
  // nothing else fixes the scale of the components (regularize/graph.hpp):
  // no sum-to-one rows, bounds, known columns or factor held fixed.
  auto fixes_scale = [](const FactorOptions& o) {
    return o.simplex || o.fixed || !o.fixed_cols.empty() || o.bounded();
  };
  const bool scale_free = !fixes_scale(opt_.W) && !fixes_scale(opt_.H);
  step[0].set_graph_scaled(scale_free, double(n));
  step[1].set_graph_scaled(scale_free, double(m));
  // A resumed factor is already feasible; projecting it again could move it
  // by rounding and the run would no longer be the uninterrupted one.
  step[0].prepare(W, !resume);
  step[1].prepare(H, !resume);
  const bool update[2] = {!opt_.W.fixed, !opt_.H.fixed};
  // Update the natural rows' factor first, whatever the orientation of M.
  const int order[2] = {opt_.transposed ? 1 : 0, opt_.transposed ? 0 : 1};
  arma::Mat<eT> gram[2];
  if (resume && !resume->gram_W.is_empty()) {
    gram[0] = resume->gram_W;
    gram[1] = resume->gram_H;
  } else {
    const ScopedTimer timer(t.gram);
    products.gram(W, gram[0]);
    products.gram(H, gram[1]);
  }
  if (!resume) {
    // Projecting a start onto sum-to-one rows changes the scale of W H^T and
    // the other factor no longer matches it, by a factor that depends on the
    // data's units: rescale the other factor to the best multiple, so that
    // the run does not depend on those units. One more product, once.
    for (int s = 0; s < 2; ++s) {
      const FactorOptions& other = *fopt[1 - s];
      if (!fopt[s]->simplex || other.fixed || other.simplex || other.bounded() ||
          !other.fixed_cols.empty())
        continue;
      arma::Mat<double> sums;
      {
        const ScopedTimer timer(t.init);
        const arma::Mat<eT>& R = s == 0 ? products.times(H) : products.trans_times(W);
        sums = {inner(*F[s], R)};
      }
      comm.all_reduce(sums);
      const double alpha = sums[0] / inner(gram[0], gram[1]);  // argmin ||M - a W H^T||
      if (!(alpha > 0) || !std::isfinite(alpha)) continue;
      *F[1 - s] *= eT(alpha);
      gram[1 - s] *= eT(alpha * alpha);
      step[1 - s].prepare(*F[1 - s], false);
    }
    step[0].start(gram[0]);
    step[1].start(gram[1]);
  } else {
    step[0].restore(resume->fixed_at_start.at(0));
    step[1].restore(resume->fixed_at_start.at(1));
    res.objective = resume->objective;
    res.rel_error = resume->rel_error;
    res.events = resume->events;
    res.n_iter = resume->iteration;
  }
  const double elapsed_before = resume ? resume->elapsed : 0.0;
  const double data_rms = std::sqrt(norm2 / (double(m) * double(n)));
  const std::string names[2] = {opt_.W.name.empty() ? "W" : opt_.W.name,
                                opt_.H.name.empty() ? "H" : opt_.H.name};

  // 1/2 ||M - W H^T||^2 and the relative error, given <M, W H^T> (summed
  // over the ranks). The Gram-matrix form is a difference of numbers of the
  // order of ||M||^2, each off by a few eps ||M||^2 (measured: a rank-1 fit
  // of rank-1 data gave 3e-8 for a true 3e-16 in float64, 4e-4 or even 0
  // for 2e-7 and 1e-4 in float32), so near an exact fit it would report,
  // and stop on, rounding. Within 256 eps of zero the loss is summed entry
  // by entry instead: one more pass over the data, for such fits only, and
  // only when W and H are the pair the cross term was taken at (`pair`).
  auto frobenius = [&](double cross, double& rel_error, bool pair) {
    double loss = 0.5 * (norm2 - 2.0 * cross + inner(gram[0], gram[1]));
    if (pair && norm2 > 0 && !(loss > 128.0 * std::numeric_limits<eT>::epsilon() * norm2)) {
      const ScopedTimer timer(t.products);
      arma::Mat<double> sum = {products.residual(W, H)};
      comm.all_reduce(sum);
      loss = 0.5 * sum[0];
    }
    rel_error = norm2 > 0 ? std::sqrt(std::max(0.0, 2.0 * loss) / norm2) : 0.0;
    return loss;
  };

  // The penalized objective, given <F[s], R> on this rank for the factor s
  // that changed last (the other one is unchanged since R).
  // H's penalty may be given, as it was before H changed (then H has moved
  // on from the pair the cross term belongs to).
  auto objective = [&](double cross_local, double& rel_error, const double* H_penalty = nullptr) {
    arma::Mat<double> local = {cross_local, step[0].local_penalty(W, gram[1]),
                               H_penalty ? *H_penalty : step[1].local_penalty(H, gram[0])};
    comm.all_reduce(local);
    const double loss = frobenius(local[0], rel_error, H_penalty == nullptr);
    return loss + local[1] + local[2] + step[0].gram_penalty(gram[0]) +
           step[1].gram_penalty(gram[1]);
  };
  auto record = [&](double f, double rel) {
    res.objective.push_back(f);
    res.rel_error.push_back(rel);
  };

  // The generalized KL divergence at the current W, H from one pass over the
  // data (log_term, <M, W H^T>), plus the penalties; rel_error stays the
  // Frobenius relative error, from the same pass.
  auto kl_objective = [&](const KLPass& pass, double& rel_error) {
    arma::Mat<double> local = {pass.log_term, pass.cross, step[0].local_penalty(W, gram[1]),
                               step[1].local_penalty(H, gram[0])};
    comm.all_reduce(local);
    const arma::rowvec cw = arma::conv_to<arma::rowvec>::from(products.column_sums(W));
    const arma::rowvec ch = arma::conv_to<arma::rowvec>::from(products.column_sums(H));
    frobenius(local[1], rel_error, true);
    return local[0] - stats.sum + arma::dot(cw, ch) + local[2] + local[3] +
           step[0].gram_penalty(gram[0]) + step[1].gram_penalty(gram[1]);
  };
  arma::Mat<eT>* kl_product = nullptr;
  auto kl_pass = [&](bool trans) {
    const ScopedTimer timer(t.products);
    KLPass pass;
    kl_product = &products.kl_times(W, H, trans, pass);
    return pass;
  };

  // Extrapolation (core/extrapolation.hpp): W and H hold the factors the
  // next half-step starts from, ex the plain iterates; the objective last
  // recorded is that of the pair (shown, the plain last-updated factor).
  const bool extrapolate = opt_.extrapolate && opt_.loss == Loss::frobenius;
  const int last = update[order[1]] ? order[1] : order[0], first = 1 - last;
  Extrapolation<eT> ex;
  arma::Mat<eT> shown, plain_gram;  // plain_gram: the first factor's plain iterate's, for a restart
  if (extrapolate && resume && !resume->extrapolation.empty()) {
    ex.resume(resume->W_plain, resume->H_plain, resume->extrapolation.at(0), resume->extrapolation.at(1));
    shown = first == 0 ? resume->W : resume->H;
  } else if (extrapolate) {
    ex.start(W, H);
    shown = *F[first];
  }
  // A column that extrapolation (and the projection after it) empties
  // while the plain iterate has it takes the plain column back: an empty
  // column is dead for good under penalties, and a restart cannot bring it
  // back once the other factor has followed it. True if any did.
  auto keep_columns = [&](int s, const arma::Mat<eT>& plain_gram_s) {
    bool any = false;
    for (arma::uword j = 0; j < k; ++j)
      if (!(gram[s](j, j) > 0) && plain_gram_s(j, j) > 0) {
        F[s]->col(j) = ex.plain(s).col(j);
        any = true;
      }
    if (any) {
      step[s].prepare(*F[s], false);
      const ScopedTimer timer(t.gram);
      products.gram(*F[s], gram[s]);
    }
    return any;
  };
  // F[s] <- its extrapolated plain iterate, in the feasible set.
  auto move_on = [&](int s) {
    if (!update[s]) return;
    const arma::Mat<eT> plain_gram_s = gram[s];
    ex.extrapolate(s, *F[s]);
    step[s].prepare(*F[s], true);
    {
      const ScopedTimer timer(t.gram);
      products.gram(*F[s], gram[s]);
    }
    keep_columns(s, plain_gram_s);
  };
  auto report_pair = [&](arma::Mat<eT>& W_out, arma::Mat<eT>& H_out) {
    (first == 0 ? W_out : H_out) = shown;
    (last == 0 ? W_out : H_out) = ex.plain(last);
  };

  // After F[s] changed (and gram[s] with it): a breakdown check (the
  // all-reduced Gram matrix is non-finite on every rank if F[s] is
  // anywhere), and the components that died. A column of zeros has left the model for good
  // (every rule keeps it at zero). Without penalties that is an accident of
  // the start, and the column gets one fresh random start: the objective may
  // rise at that iteration. With penalties, zero may be the regularized
  // answer, so it stays. Either way the result records it. Fixed columns and
  // sum-to-one rows (an unused component is a valid answer) are left alone.
  const bool penalized = opt_.W.l1 > 0 || opt_.W.l2 > 0 || opt_.W.smooth > 0 || opt_.W.minvol > 0 ||
                         opt_.H.l1 > 0 || opt_.H.l2 > 0 || opt_.H.smooth > 0 || opt_.H.minvol > 0;
  std::vector<bool> dead[2] = {std::vector<bool>(k, false), std::vector<bool>(k, false)};
  auto after_update = [&](int s, int it) {
    if (!gram[s].is_finite()) detail::throw_breakdown<eT>(names[s], *fopt[s], it, data_rms);
    bool any = false;
    for (arma::uword j = 0; j < k; ++j) {
      if (gram[s](j, j) > 0 || dead[s][j] || !step[s].revivable(j)) continue;
      dead[s][j] = true;
      if (penalized) {
        res.events.push_back({it, "component " + std::to_string(j) + " of " + names[s] +
                                      " became zero under the penalties and stays zero"});
        continue;
      }
      any = true;
      const bool natural_rows = (s == 0) != opt_.transposed;
      const arma::uword first = s == 0 ? comm.W_rows(m).first : comm.H_rows(n).first;
      arma::Mat<eT> fresh(F[s]->n_rows, 1);
      init::fill_uniform(fresh, init::CounterRng(opt_.seed + std::uint64_t(it) * 2 + (natural_rows ? 0 : 1),
                                                 init::Stream::revive),
                         first, init::random_scale(stats.sum / (double(m) * double(n)), k));
      step[s].revive(*F[s], j, fresh);
      if (extrapolate) ex.plain(s).col(j) = F[s]->col(j);
      res.events.push_back({it, "component " + std::to_string(j) + " of " + names[s] +
                                    " became zero and " + detail::reseeded_event});
    }
    if (any) {
      const ScopedTimer timer(t.gram);
      products.gram(*F[s], gram[s]);
    }
    return any;
  };

  auto state = [&](double elapsed) {
    State<eT> st;
    st.iteration = res.n_iter;
    st.W = W;
    st.H = H;
    if (extrapolate) {
      st.W_next = W;
      st.H_next = H;
      report_pair(st.W, st.H);
      st.W_plain = ex.plain(0);
      st.H_plain = ex.plain(1);
      st.extrapolation = {ex.beta(), ex.beta_bar()};
    }
    st.objective = res.objective;
    st.rel_error = res.rel_error;
    st.elapsed = elapsed;
    st.data_norm = res.data_norm;
    st.fixed_at_start = {step[0].fixed_at_start(), step[1].fixed_at_start()};
    st.events = res.events;
    st.gram_W = gram[0];
    st.gram_H = gram[1];
    return st;
  };
  double next_save = elapsed_before + checkpointing.seconds;

  // The fused pass, where it pays (dense data, one row of ranks, a copy of
  // M H that stays in cache): Z holds this rank's M H for W's next
  // half-step.
  FusedPlan plan;
  if constexpr (detail::fusable<Data>::value)
    if (comm.grid_rows() == 1) plan = fused_plan<eT>(data.n_rows(), data.n_cols(), k);
  // With extrapolation the pass multiplies M by the extrapolated H, which
  // is what W's half-step needs only when H is updated first.
  const bool fused = plan.parts > 0 && opt_.loss == Loss::frobenius && update[0] && update[1] &&
                     (!extrapolate || first == 1);
  arma::Mat<eT> Z, gathered, scattered;
  bool z_ready = false;

  // Before F[s]'s half-step: the ridge the other factor's scaled graph
  // term puts on it, gamma q_j from the other factor as it is now, summed
  // over the ranks (k numbers).
  auto couple = [&](int s) {
    if (!step[1 - s].graph_scaled()) return;
    arma::Mat<double> ridge = step[1 - s].graph_ridge(*F[1 - s]);
    comm.all_reduce(ridge);
    step[s].set_ridge(ridge);
  };

  // Converged when an iteration gains less than tol, or when the fit is
  // exact to tol: then the objective falls geometrically towards zero and
  // its relative decrease alone would never get small. An iteration that
  // re-seeded a component is a new start, not a step to compare.
  // With extrapolation a rise is a restart, not convergence.
  auto converged = [&](double f_prev, double f, double rel, bool reseeded) {
    const bool gained_little = f_prev - f <= opt_.tol * std::abs(f_prev) && !(extrapolate && f > f_prev);
    return !reseeded && (gained_little || rel <= opt_.tol);
  };
  bool stop = false;
  if (resume) {
    // A run killed after saving its last iteration, before its caller kept
    // the result: the test that ended it then ends it again, with no
    // iteration run (as at max_iter), and the result is the uninterrupted one.
    const std::size_t last = res.objective.size() - 1;
    bool reseeded = false;
    for (const Event& e : res.events)
      reseeded |= e.iteration == res.n_iter && e.what.find(detail::reseeded_event) != std::string::npos;
    if (last > 0 && converged(res.objective[last - 1], res.objective[last], res.rel_error[last], reseeded)) {
      res.stop_reason = StopReason::tol;
      res.converged = stop = true;
    } else if (comm.any(elapsed_before >= opt_.time_limit)) {
      res.stop_reason = StopReason::time_limit;
      stop = true;
    }
  }
  for (int it = res.n_iter + 1; it <= opt_.max_iter && !stop; ++it) {
    double cross = 0.0, rel = 0.0, f = 0.0;
    bool reseeded = false;
    if (opt_.loss == Loss::kl) {
      for (int s : order) {
        if (!update[s]) continue;
        couple(s);
        const KLPass pass = kl_pass(s == 1);
        if (res.objective.empty()) {
          const double f0 = kl_objective(pass, rel);
          record(f0, rel);
        }
        {
          const ScopedTimer timer(t.update);
          step[s].update_kl(products.column_sums(*F[1 - s]), *kl_product, *F[s], gram[1 - s]);
        }
        {
          const ScopedTimer timer(t.gram);
          products.gram(*F[s], gram[s]);
        }
        reseeded |= after_update(s, it);
      }
      // One more pass for the objective at the new point (the products of
      // the next half-step depend on it, so they cannot be reused here).
      f = kl_objective(kl_pass(false), rel);
    } else {
      for (int s : order) {
        if (!update[s]) continue;
        couple(s);
        if (fused && s == 1) {
          // H's half-step and the product M H of W's, in one pass over M
          // (its time counts as products).
          arma::Mat<eT> new_gram;
          double before = 0;
          const bool starting = res.objective.empty();
          const double H_penalty = starting ? step[1].local_penalty(H, gram[0]) : 0.0;
          FusedExtrapolation<eT> fx{ex.plain(1), ex.beta(), {}};
          {
            const ScopedTimer timer(t.products);
            if constexpr (detail::fusable<Data>::value)
              fused_half_step(data.matrix(), comm.gather_W(W, gathered), gram[0], H, gram[1], step[1],
                              plan, threads, Z, new_gram, cross, before, extrapolate ? &fx : nullptr);
          }
          comm.all_reduce(new_gram);
          if (starting) {  // the starting point's objective
            const double f0 = objective(before, rel, &H_penalty);
            record(f0, rel);
          }
          gram[1] = std::move(new_gram);
          bool kept = false;
          if (extrapolate) {
            comm.all_reduce(fx.plain_gram);
            plain_gram = std::move(fx.plain_gram);
            kept = keep_columns(1, plain_gram);  // then Z, summed from the emptied columns, is stale
          }
          const bool revived = after_update(1, it);
          reseeded |= revived;
          z_ready = !revived && !kept;
          continue;
        }
        arma::Mat<eT>* R;
        {
          const ScopedTimer timer(t.products);
          if (fused && s == 0) {
            if constexpr (detail::fusable<Data>::value)
              if (!z_ready) fused_times(data.matrix(), H, plan, threads, Z);
            z_ready = false;
            R = &comm.scatter_W(Z, scattered);
          } else {
            R = (s == 0) ? &products.times(H) : &products.trans_times(W);
          }
        }
        if (res.objective.empty()) {  // the starting point's objective, for free
          const double f0 = objective(inner(*F[s], *R), rel);
          record(f0, rel);
        }
        {
          // The rule's pass over F also sums F^T F and <F, R> at the new F.
          const ScopedTimer timer(t.update);
          arma::Mat<eT> new_gram;
          step[s].update(gram[1 - s], *R, *F[s], gram[s], new_gram, cross);
          comm.all_reduce(new_gram);
          gram[s] = std::move(new_gram);
        }
        reseeded |= after_update(s, it);
        if (extrapolate) {
          ex.stepped(s, *F[s]);
          if (s == first) {
            plain_gram = gram[s];
            move_on(s);
          }
        }
      }
      f = objective(cross, rel);
      if (extrapolate) {
        shown = *F[first];
        if (ex.accept(f, res.objective.back())) {
          move_on(last);
        } else if (update[first]) {  // restart from the plain iterates
          *F[first] = ex.plain(first);
          step[first].prepare(*F[first], false);
          gram[first] = plain_gram;
        }
      }
    }
    const double f_prev = res.objective.back();
    record(f, rel);
    res.n_iter = it;

    if (!std::isfinite(f) || !std::isfinite(f_prev)) {
      const bool start = !std::isfinite(f_prev);
      throw std::runtime_error("unmix: the objective became " + std::to_string(start ? f_prev : f) +
                               " at iteration " + std::to_string(start ? it - 1 : it) +
                               "; the data or the regularization weights are out of range");
    }
    const double elapsed = elapsed_before + clock.seconds();
    const bool asked = comm.any(callback && callback(Progress{it, f, rel, elapsed}));
    if (converged(f_prev, f, rel, reseeded)) {
      res.stop_reason = StopReason::tol;
      res.converged = stop = true;
    } else if (asked) {
      res.stop_reason = StopReason::callback;
      stop = true;
    } else if (comm.any(elapsed >= opt_.time_limit)) {
      res.stop_reason = StopReason::time_limit;
      stop = true;
    }
    if (checkpointing.save) {
      const bool by_count = checkpointing.every > 0 && it % checkpointing.every == 0;
      const bool by_clock = comm.any(elapsed >= next_save);
      if (stop || it == opt_.max_iter || by_count || by_clock) {
        checkpointing.save(state(elapsed));
        if (by_clock) next_save = elapsed + checkpointing.seconds;
      }
    }
  }
  // Every solver keeps the objective monotone, but a re-seeded component,
  // an extrapolation's restart or rounding may still leave it above where
  // it started: the result says so rather than hand back a worse answer
  // silently. Rises within rounding of the data's precision do not count.
  const double f_start = res.objective.empty() ? 0.0 : res.objective.front();
  const double f_end = res.objective.empty() ? 0.0 : res.objective.back();
  if (f_end - f_start > 256.0 * std::numeric_limits<eT>::epsilon() * std::max(std::abs(f_start), 0.5 * norm2)) {
    std::ostringstream m;
    m << std::setprecision(6) << "the objective ended at " << f_end << ", " << detail::rose_event << " "
      << f_start;
    res.events.push_back({res.n_iter, m.str()});
  }
  if (extrapolate) report_pair(W, H);
  // The scaled graph term does not change when a column of one factor is
  // multiplied and the other's divided by the same number: return the
  // factors at the scale it is measured at, columns of norm 1 / sqrt(rows)
  // for the factor without the graph (when both have one, the natural
  // orientation's basis, the factor updated second, so that M and its
  // transpose still give the same factors), where it is the unweighted
  // term — unless another penalty depends on the scale, so that the
  // rescaling would change the objective.
  const bool scale_dependent = opt_.W.l1 > 0 || opt_.W.l2 > 0 || opt_.W.minvol > 0 || opt_.H.l1 > 0 ||
                               opt_.H.l2 > 0 || opt_.H.minvol > 0;
  if ((step[0].graph_scaled() || step[1].graph_scaled()) && !scale_dependent) {
    const int unit = !step[0].graph_scaled() ? 0 : !step[1].graph_scaled() ? 1 : order[1];
    arma::Mat<eT> g;
    products.gram(*F[unit], g);
    const double rows = unit == 0 ? double(m) : double(n);
    for (arma::uword j = 0; j < k; ++j) {
      const eT a = eT(std::sqrt(rows * double(g(j, j))));  // sqrt(rows) ||F_j||
      if (!(a > 0) || !std::isfinite(a)) continue;
      F[unit]->col(j) /= a;
      F[1 - unit]->col(j) *= a;
    }
  }
  t.total = clock.seconds();
  return res;
}

}  // namespace unmix
