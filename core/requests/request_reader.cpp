#include "core/requests/request_reader.h"

#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>

#include "core/requests/jsonl_request.h"
#include "loom/error.h"

namespace loom {

namespace {

bool is_blank(std::string_view line) { return line.find_first_not_of(" \t\v\f") == std::string_view::npos; }

InputFormat detect_format(std::string_view first_non_blank) {
  auto start = first_non_blank.find_first_not_of(" \t\v\f");
  return first_non_blank[start] == '{' ? InputFormat::kJsonl : InputFormat::kText;
}

// Collects requests and bad lines, applying the policy and the id rules.
class Collector {
 public:
  Collector(const std::string& source, BadLinePolicy policy) : source_(source), policy_(policy) {}

  void bad(std::size_t line, const std::string& message) {
    std::string full = source_ + ":" + std::to_string(line) + ": " + message;
    if (policy_ == BadLinePolicy::kFail) throw UsageError(full);
    result_.bad_lines.push_back({line, std::move(full)});
  }

  void warn(std::size_t line, const std::string& message) {
    result_.warnings.push_back(source_ + ":" + std::to_string(line) + ": " + message);
  }

  void add(Request request) {
    if (!request.id.empty()) {
      auto [it, inserted] = first_line_of_id_.emplace(request.id, request.line);
      if (!inserted) {
        bad(request.line, "duplicate id \"" + request.id + "\" (first used on line " + std::to_string(it->second) +
                              "); ids must be unique");
        return;
      }
    }
    result_.requests.push_back(std::move(request));
  }

  // Generated ids come last, so that they can step around every id the input gives itself.
  ReadResult finish(InputFormat format) {
    for (auto& request : result_.requests) {
      if (!request.id.empty()) continue;
      std::string base = "line-" + std::to_string(request.line);
      std::string id = base;
      for (int k = 2; first_line_of_id_.contains(id); ++k) id = base + "-" + std::to_string(k);
      first_line_of_id_.emplace(id, request.line);
      request.id = std::move(id);
    }
    result_.format = format;
    return std::move(result_);
  }

 private:
  const std::string& source_;
  BadLinePolicy policy_;
  ReadResult result_;
  std::unordered_map<std::string, std::size_t> first_line_of_id_;
};

}  // namespace

ReadResult read_requests(std::istream& in, const std::string& source_name, const SamplingParams& defaults,
                         InputFormat format, BadLinePolicy policy) {
  Collector collector(source_name, policy);
  std::string line;
  std::size_t line_number = 0;
  const bool detecting = format == InputFormat::kAuto;
  bool warned_json_line = false;  // once is enough
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_number == 1 && line.starts_with("\xEF\xBB\xBF")) line.erase(0, 3);
    if (line.find('\0') != std::string::npos)
      throw UsageError(source_name + ":" + std::to_string(line_number) +
                       ": holds a NUL byte: this is not a text or JSONL file of requests");
    if (is_blank(line)) continue;
    if (format == InputFormat::kAuto) {
      format = detect_format(line);  // the first non-blank line decides
    } else if (detecting && format == InputFormat::kText && !warned_json_line &&
               detect_format(line) == InputFormat::kJsonl) {
      collector.warn(line_number,
                     "starts with '{' but the input is read as text (its first line is not a JSON "
                     "object); if it is JSONL, give --input-format jsonl or name the file *.jsonl");
      warned_json_line = true;
    }

    if (format == InputFormat::kText) {
      Request request;
      request.prompt = std::move(line);
      request.params = defaults;
      request.line = line_number;
      collector.add(std::move(request));
      line = std::string();
      continue;
    }
    auto parsed = parse_jsonl_request(line, defaults);
    if (auto* message = std::get_if<std::string>(&parsed)) {
      collector.bad(line_number, *message);
      continue;
    }
    auto& request = std::get<Request>(parsed);
    request.line = line_number;
    collector.add(std::move(request));
  }
  if (in.bad()) {
    throw Error(source_name + ": reading failed after line " + std::to_string(line_number) +
                "; check that the file is readable and complete");
  }
  return collector.finish(format == InputFormat::kAuto ? InputFormat::kText : format);
}

}  // namespace loom
