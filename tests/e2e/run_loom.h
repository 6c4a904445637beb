// Runs the built `loom` binary as a user would and captures what it prints and its exit code.
#pragma once

#include <array>
#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace loom::testing {

struct LoomRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// `redirect` is appended to the command line: by default standard error joins standard output;
// "2>/dev/null" keeps only standard output.
inline LoomRun run_loom(const std::string& arguments, const std::string& redirect = "2>&1") {
  const std::string command = std::string(LOOM_BINARY_DIR) + "/bin/loom " + arguments + " " + redirect;
  LoomRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return run;
  std::array<char, 4096> buffer;
  while (std::size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) run.output.append(buffer.data(), n);
  int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace loom::testing
