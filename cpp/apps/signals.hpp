#pragma once
// SIGINT (Ctrl-C) and SIGTERM (what a batch scheduler, or mpirun passing on
// a Ctrl-C, sends before it kills a job): the fit stops at the end of its
// iteration, saves a checkpoint and the program exits with 128 + the
// signal's number, the status a shell gives a process the signal killed.
// Part of the unmix-nmf program: included only by unmix_nmf.cpp.
#include <csignal>

#include <fcntl.h>
#include <signal.h>

namespace unmix_nmf {

// Written by the handler, read at iteration boundaries: writing a
// sig_atomic_t is all a handler may safely do while the program is in
// the middle of anything (an allocation, an MPI call).
volatile std::sig_atomic_t stop_signal = 0;

// Under mpirun the output goes to mpirun (through a pipe or a pseudo-
// terminal of its own), which stops reading once it passes a signal on and
// kills the ranks a second later: a rank blocked printing a progress line
// would never reach its checkpoint. From the signal on, such a write fails
// instead of waiting (the line is lost, the state is not). Not on a serial
// run: its terminal's file description is the shell's too, and would stay
// non-blocking after the program.
volatile std::sig_atomic_t launcher_outputs = 0;

extern "C" void unmix_nmf_note_stop_signal(int sig) {
  stop_signal = sig;
  if (launcher_outputs)
    for (int fd = 1; fd <= 2; ++fd) {
      const int flags = fcntl(fd, F_GETFL);  // fcntl is async-signal-safe
      if (flags != -1) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    }
}

// Until the handlers are in, SIGINT and SIGTERM wait blocked: MPI's start
// takes a fraction of a second, and a signal then would kill the process
// without a word. Threads started meanwhile (MPI's) inherit the mask and
// leave the signals to the main thread.
void hold_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// A signal ignored when the program starts (nohup, a background job of a
// shell) stays ignored, as shells expect. The handler is used once
// (SA_RESETHAND): a second Ctrl-C ends the program at once, the way out
// when an iteration is too long to wait for. SA_RESTART: a write the
// signal interrupts goes on, instead of failing the checkpoint it belongs to.
void catch_stop_signals(bool under_mpirun) {
  launcher_outputs = under_mpirun;
  for (const int sig : {SIGINT, SIGTERM}) {
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) != 0 || old.sa_handler == SIG_IGN) continue;
    struct sigaction sa {};
    sa.sa_handler = unmix_nmf_note_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    sigaction(sig, &sa, nullptr);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);  // a signal held back arrives now
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
  }
  return "a signal";
}

int signal_exit_code(int sig) { return 128 + sig; }

}  // namespace unmix_nmf
