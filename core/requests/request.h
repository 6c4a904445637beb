// One generation request of a batch run, as read from `loom generate --input FILE`.
//
// The reader (request_reader.h) turns each line of the input into a Request or a BadLine; the
// engine then serves the requests and the ResultWriter (result_writer.h) writes one result line
// per finished sample. Range checks of the sampling values (temperature < 0, top_p > 1, ...)
// belong to the sampler; the reader checks types and what it needs itself (ids, counts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/sampling/sampling_params.h"

namespace loom {

struct Request {
  // From the line's "id" (a string, or an integer written in decimal); otherwise generated as
  // "line-<N>" with N the line number. Unique within one input.
  std::string id;
  // Exactly one of prompt and prompt_token_ids is given.
  std::optional<std::string> prompt;
  std::vector<std::int32_t> prompt_token_ids;
  // The caller's defaults, overridden by the fields present on the line.
  SamplingParams params;
  // When the request arrives, in seconds since the run's start (>= 0); absent = 0, at the start.
  // Workload traces carry it (docs/workloads.md).
  double arrival_time = 0;
  // 1-based line of the input the request came from, for messages.
  std::size_t line = 0;
};

enum class InputFormat {
  kAuto,   // JSONL when the first non-blank line starts with '{', else text
  kText,   // one prompt per line
  kJsonl,  // one JSON object per line
};

enum class BadLinePolicy {
  kSkip,  // collect bad lines in ReadResult::bad_lines and read on
  kFail,  // throw UsageError for the first bad line
};

// A line that could not be turned into a request.
struct BadLine {
  std::size_t line = 0;  // 1-based
  std::string message;   // "<source>:<line>: <what is wrong>", ready to print
};

struct ReadResult {
  std::vector<Request> requests;  // in input order
  std::vector<BadLine> bad_lines;  // in input order; empty under BadLinePolicy::kFail
  InputFormat format = InputFormat::kText;  // the format used (never kAuto)
  std::vector<std::string> warnings;        // "FILE:N: ..." for lines read on that may be misread
};

}  // namespace loom
