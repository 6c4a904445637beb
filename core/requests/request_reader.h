// Reads the input of `loom generate --input FILE`: a batch of requests, as plain text (one
// prompt per line) or JSONL (one JSON object per line, see jsonl_request.h and docs/requests.md).
//
// Reading is one pass over the lines, linear in the input's size, so 100k-token prompts are fine.
// Blank lines are skipped in both formats; a trailing '\r' (Windows line ends) and a UTF-8 byte
// order mark at the start are dropped. Every request gets a unique id: the line's own "id", or
// "line-<N>" (N = its line number; "line-<N>-2", ... if the input itself uses that id).
#pragma once

#include <istream>
#include <string>

#include "core/requests/request.h"

namespace loom {

// Reads every line of `in`. `source_name` (usually the file's path) starts each message:
// `requests.jsonl:7: "temperature" must be a number, got a string ("hot")`.
// With InputFormat::kAuto the first non-blank line decides: JSONL when it starts with '{'. Read
// as text, a later line that starts with '{' gets a warning (a JSONL file whose first line is
// not JSON). A NUL byte anywhere is not text: UsageError naming the line, whatever the policy.
// A line is bad when it is not a JSON object, has an unknown or mistyped field, gives both or
// neither of prompt and prompt_token_ids, or repeats an earlier line's id.
// Policy kSkip: bad lines go to ReadResult::bad_lines and reading goes on.
// Policy kFail: throws UsageError (exit code 2) with the first bad line's message.
// Throws Error when the stream itself fails while reading.
ReadResult read_requests(std::istream& in, const std::string& source_name, const SamplingParams& defaults,
                         InputFormat format = InputFormat::kAuto, BadLinePolicy policy = BadLinePolicy::kSkip);

}  // namespace loom
