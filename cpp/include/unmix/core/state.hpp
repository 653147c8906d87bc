#pragma once
#include <armadillo>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace unmix {

// Something the driver did on its own during a run (re-seeding a dead
// component, say), kept in the result so that nothing happens silently.
struct Event {
  int iteration;
  std::string what;
};

// Everything a run needs to continue exactly where it was: this rank's rows
// of the factors, the history, and the values the run fixed at its start.
// Resuming from a State gives the factors of the uninterrupted run, because
// every rule restarts from the factors alone.
template <typename eT>
struct State {
  int iteration = 0;                     // iterations done
  arma::Mat<eT> W, H;                    // this rank's rows
  std::vector<double> objective, rel_error;
  double elapsed = 0;                    // seconds of fitting so far
  double data_norm = 0;                  // ||M||_F, to recognize the data on resume
  std::vector<double> fixed_at_start;    // the penalties' (min-volume's delta), W's then H's
  std::vector<Event> events;
  // W^T W and H^T H as the run last summed them (over all ranks). Summed
  // again from the factors they could differ in the last bits, and the
  // resumed run would drift from the uninterrupted one. Empty: sum them.
  arma::Mat<eT> gram_W, gram_H;
  // With Options::extrapolate (W, H above are then the pair whose objective
  // was recorded last): the plain iterates, the factors the next iteration
  // starts from, and beta, beta_bar. Empty otherwise.
  arma::Mat<eT> W_plain, H_plain, W_next, H_next;
  std::vector<double> extrapolation;
};

// Called with the state every `every` iterations or `seconds` seconds
// (whichever comes first) and once more when the run stops. It runs on
// every rank at the same iteration, so it may use the communicator.
template <typename eT>
struct Checkpointing {
  std::function<void(const State<eT>&)> save;
  int every = 0;  // 0: not by iteration count
  double seconds = std::numeric_limits<double>::infinity();
  const State<eT>* resume = nullptr;  // continue this run instead of starting one
};

}  // namespace unmix
