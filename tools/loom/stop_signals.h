// SIGINT, SIGTERM and SIGHUP during a long command: while a StopSignals lives they are caught
// instead of killing the process, so the command can end its current step, say what it kept and
// exit with the conventional code, 128 + the signal's number. A second signal of the same kind
// kills as usual (the handler is reset after the first).
#pragma once

namespace loom::cli {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  int received() const;  // the first signal caught, or 0
};

const char* signal_name(int signal);  // "SIGINT", "SIGTERM", "SIGHUP"

}  // namespace loom::cli
