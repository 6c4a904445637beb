// Shared by the fault-injecting plugins (faulty_*.cpp): each wraps the real plugin of its kind
// and, at random, makes a call throw — before the real call (nothing happened) or after it (the
// work was done but the caller is told it failed). The engine must cope with both: it may rely
// only on the basic guarantee, a plugin that stays consistent whatever a throwing call did.
//
// Keys every faulty plugin accepts:
//   inner        path of the real plugin's .so, loaded through the SDK's entry point
//   seed         of the fault stream; equal seeds give equal faults for equal call sequences
//   throw_rate   probability that an eligible call throws
//   throw_calls  comma-separated method names that may throw; "" = every method listed below
//   report       file that receives, when the plugin is destroyed, one line per fault kind:
//                "<method> <throw|fail|bad> <count>" (fail: a failed allocation; bad: a result that
//                breaks the interface's contract)
// The methods a plugin never makes throw are those the engine calls only while it is being set
// up (supports(), set_evictor()) and stats(), which is introspection, not a step of the loop.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <type_traits>
#include <utility>

#include "loom/error.h"
#include "loom/plugin.h"

namespace loom::faults {

inline const sdk::ConfigKeySpec kCommonKeys[] = {
    {"inner", sdk::KeyType::string, "", "path of the real plugin's .so that this one wraps"},
    {"seed", sdk::KeyType::integer, "0", "seed of the fault stream"},
    {"throw_rate", sdk::KeyType::number, "0.0", "probability that an eligible call throws"},
    {"throw_calls", sdk::KeyType::string, "", "comma-separated methods that may throw; empty = all"},
    {"report", sdk::KeyType::string, "", "file the fault counts are written to at destruction"},
};

class FaultSource {
 public:
  FaultSource(std::string plugin, const sdk::PluginConfig& config)
      : plugin_(std::move(plugin)),
        state_(static_cast<std::uint64_t>(config.integer("seed")) * 0x9E3779B97F4A7C15ULL + plugin_.size()),
        throw_rate_(config.number("throw_rate")),
        throw_calls_("," + config.string("throw_calls") + ","),
        report_(config.string("report")) {
    if (!(throw_rate_ >= 0.0 && throw_rate_ <= 1.0)) throw config.invalid("throw_rate", "must be in [0, 1]");
  }

  FaultSource(const FaultSource&) = delete;
  FaultSource& operator=(const FaultSource&) = delete;

  ~FaultSource() {
    if (report_.empty()) return;
    std::ofstream out(report_);
    for (const auto& [key, count] : counts_) out << key << " " << count << "\n";
  }

  // Uniform in [0, 1), from splitmix64: the stream depends on nothing but the seed.
  double uniform() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  }

  // True (and counted) with probability `rate`; for faults other than throwing. A rate of 0
  // draws nothing, so adding a kind of fault does not shift the stream of the others.
  bool fires(const char* call, const char* kind, double rate) {
    if (!(rate > 0) || !(uniform() < rate)) return false;
    ++counts_[std::string(call) + " " + kind];
    return true;
  }

  // Runs `real` (the call on the inner plugin) and, when this call draws a fault, throws before
  // or after it.
  template <typename Real>
  decltype(auto) call(const char* name, Real&& real) {
    std::string needle = ",";  // built by appending: g++ 12 -O3 warns falsely on "," + std::string(...)
    needle.append(name).append(",");
    const bool eligible = throw_calls_ == ",," || throw_calls_.find(needle) != std::string::npos;
    const bool faulty = eligible && uniform() < throw_rate_;
    const bool before = faulty && uniform() < 0.5;
    if (before) raise(name, "before");
    if constexpr (std::is_void_v<decltype(real())>) {
      real();
      if (faulty) raise(name, "after");
    } else {
      decltype(auto) result = real();
      if (faulty) raise(name, "after");
      return result;
    }
  }

 private:
  [[noreturn]] void raise(const char* name, const char* when) {
    const std::uint64_t n = ++counts_[std::string(name) + " throw"];
    throw Error("injected fault: " + plugin_ + "." + name + "() threw " + when + " the real call (fault #" +
                std::to_string(n) + " of this kind)");
  }

  std::string plugin_;
  std::uint64_t state_;
  double throw_rate_;
  std::string throw_calls_;
  std::string report_;
  std::map<std::string, std::uint64_t> counts_;
};

}  // namespace loom::faults
