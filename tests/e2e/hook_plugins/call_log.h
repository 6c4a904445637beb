// A plugin's record of the calls it received, one line per call appended to the file its `log`
// key names ("" keeps no record), so a test can assert their order and arguments.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace loom::hooks {

class CallLog {
 public:
  explicit CallLog(const std::string& path) {
    if (!path.empty()) out_.open(path, std::ios::app);
  }
  template <typename... Parts>
  void write(const Parts&... parts) {
    if (!out_.is_open()) return;
    std::ostringstream line;
    ((line << parts << ' '), ...);
    std::string text = line.str();
    text.back() = '\n';
    out_ << text << std::flush;
  }

 private:
  std::ofstream out_;
};

}  // namespace loom::hooks
