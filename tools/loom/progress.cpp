#include "tools/loom/progress.h"

#include <unistd.h>

#include <cstdio>

namespace loom::cli {

void draw_progress(std::size_t done, std::size_t total, std::uint64_t tokens, double elapsed_s, const char* label) {
  const int width = 30;
  const int filled = total ? static_cast<int>(width * done / total) : width;
  const double rate = elapsed_s > 0 ? static_cast<double>(tokens) / elapsed_s : 0;
  char eta[32] = "?";  // no estimate until a request has finished, not "0 s"
  if (done > 0) std::snprintf(eta, sizeof eta, "%.0f s", elapsed_s * static_cast<double>(total - done) / done);
  std::fprintf(stderr, "\r%s[%.*s%*s] %zu/%zu requests  %.1f tok/s  ETA %s ", label, filled,
               "##############################", width - filled, "", done, total, rate, eta);
  std::fflush(stderr);
}

void finish_progress() { std::fprintf(stderr, "\n"); }

void erase_progress() { std::fprintf(stderr, "\r%*s\r", 120, ""); }

bool progress_wanted() { return isatty(STDERR_FILENO); }

}  // namespace loom::cli
