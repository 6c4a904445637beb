#include "core/requests/result_writer.h"

#include <cmath>
#include <utility>

#include <nlohmann/json.hpp>

#include "loom/error.h"

namespace loom {

namespace {

using ordered_json = nlohmann::ordered_json;

// Milliseconds, rounded to the microsecond: more digits would only be noise.
double to_ms(double seconds) { return std::round(seconds * 1.0e6) / 1.0e3; }

ordered_json timings(const RequestResult& r) {
  ordered_json t;
  bool has_first = r.first_token_s >= 0;
  std::size_t tokens = r.token_ids.size();
  t["ttft_ms"] = has_first ? ordered_json(to_ms(r.first_token_s - r.arrival_s)) : ordered_json(nullptr);
  t["e2e_ms"] = to_ms(r.finish_s - r.arrival_s);
  if (has_first && tokens >= 2) {
    t["tpot_ms"] = to_ms((r.finish_s - r.first_token_s) / static_cast<double>(tokens - 1));
  } else {
    t["tpot_ms"] = nullptr;
  }
  return t;
}

// Per token: {"token_id", "logprob", "top_logprobs": [{"token_id", "logprob"}, ...]}; a
// log-probability of -inf (a token the model cannot produce) is written as null.
ordered_json logprobs_json(const std::vector<TokenLogprobs>& tokens) {
  auto number = [](double x) { return std::isfinite(x) ? ordered_json(x) : ordered_json(nullptr); };
  ordered_json list = ordered_json::array();
  for (const TokenLogprobs& t : tokens) {
    ordered_json entry;
    entry["token_id"] = t.token;
    entry["logprob"] = number(t.logprob);
    ordered_json top = ordered_json::array();
    for (const auto& [id, logprob] : t.top) top.push_back({{"token_id", id}, {"logprob", number(logprob)}});
    entry["top_logprobs"] = std::move(top);
    list.push_back(std::move(entry));
  }
  return list;
}

}  // namespace

std::string format_result_line(const RequestResult& r) {
  ordered_json line;
  line["id"] = r.id;
  if (r.n > 1) line["index"] = r.index;
  line["text"] = r.text;
  line["token_ids"] = r.token_ids;
  line["finish_reason"] = r.finish_reason;
  if (r.finish_reason == "error" || !r.error.empty()) line["error"] = r.error;
  line["prompt_tokens"] = r.prompt_tokens;
  line["completion_tokens"] = r.token_ids.size();
  if (r.logprobs) line["logprobs"] = logprobs_json(*r.logprobs);
  if (r.prompt_logprobs) line["prompt_logprobs"] = logprobs_json(*r.prompt_logprobs);
  line["timings"] = timings(r);
  return line.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

ResultWriter::ResultWriter(std::ostream& out, std::string sink_name) : out_(out), sink_name_(std::move(sink_name)) {}

void ResultWriter::write(const RequestResult& result) {
  // One write of the whole line: a reader (or a crash) never sees a line without its newline
  // unless the write itself stopped part-way (a full disk).
  std::string line = format_result_line(result);
  line += '\n';
  out_.write(line.data(), static_cast<std::streamsize>(line.size()));
  out_.flush();
  if (!out_) {
    throw Error(sink_name_ + ": writing the result of request \"" + result.id +
                "\" failed; check free disk space and that the output is writable");
  }
  ++lines_written_;
  bytes_written_ += line.size();
}

}  // namespace loom
