#include "nemokit/runtime/run/stop_signal.hpp"

#include <csignal>

namespace nemokit::rt {

namespace {
volatile std::sig_atomic_t g_signal = 0;
struct sigaction g_old_term, g_old_usr1, g_old_int;

void on_signal(int sig) {
  if (g_signal == 0) g_signal = sig;
}
}  // namespace

StopSignal::StopSignal() {
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, &g_old_term);
  sigaction(SIGUSR1, &sa, &g_old_usr1);
  sigaction(SIGINT, &sa, &g_old_int);
}

StopSignal::~StopSignal() {
  sigaction(SIGTERM, &g_old_term, nullptr);
  sigaction(SIGUSR1, &g_old_usr1, nullptr);
  sigaction(SIGINT, &g_old_int, nullptr);
}

bool StopSignal::requested() const { return g_signal != 0; }
int StopSignal::signal_number() const { return g_signal; }

}  // namespace nemokit::rt
