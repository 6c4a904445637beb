// Writes the results of `loom generate` as JSONL: one JSON object per finished sample, flushed
// as soon as it is written, so a run that is interrupted keeps everything it finished.
// docs/requests.md shows the fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/sampling/logprobs.h"

namespace loom {

// What one sample of one request produced, and when.
struct RequestResult {
  std::string id;
  std::int32_t index = 0;  // sample index, 0 .. n-1
  std::int32_t n = 1;      // samples the request asked for; "index" is written only when n > 1
  std::string text;        // generated text only (not the prompt); may hold invalid UTF-8
  std::vector<std::int32_t> token_ids;  // generated tokens only
  std::string finish_reason;  // "stop" | "length" | "error"
  std::string error;          // why, when finish_reason == "error"
  std::size_t prompt_tokens = 0;
  // When the request set logprobs: one entry per token of token_ids.
  std::optional<std::vector<TokenLogprobs>> logprobs;
  // When the request set prompt_logprobs: one entry per prompt token after the first.
  std::optional<std::vector<TokenLogprobs>> prompt_logprobs;
  // Seconds since the run started; first_token_s < 0 when no token was produced.
  double arrival_s = 0;
  double first_token_s = -1;
  double finish_s = 0;
};

class ResultWriter {
 public:
  // Borrows `out` for the writer's lifetime; `sink_name` (the output's path, or "stdout") names
  // it in errors.
  explicit ResultWriter(std::ostream& out, std::string sink_name = "output");

  // Writes `result` as one line, newline included, in one write, and flushes. Invalid UTF-8 in
  // the text is written as U+FFFD, so every line is valid JSON. Throws Error when the stream
  // fails (disk full, closed pipe); the stream may then end in part of that line, which
  // bytes_written() lets a file's owner cut off.
  void write(const RequestResult& result);

  std::size_t lines_written() const { return lines_written_; }
  // Bytes of the complete lines written: where the output ends if a write failed part-way.
  std::uint64_t bytes_written() const { return bytes_written_; }

 private:
  std::ostream& out_;
  std::string sink_name_;
  std::size_t lines_written_ = 0;
  std::uint64_t bytes_written_ = 0;
};

// The JSON text of one result line, without the newline; what write() writes.
std::string format_result_line(const RequestResult& result);

}  // namespace loom
