// An error `loom serve` reports to its client: the HTTP status and OpenAI's error body
// ({"error": {"message", "type", "param", "code"}}), written by error_body().
#pragma once

#include <stdexcept>
#include <string>

namespace loom::serve {

struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& message, std::string param = "")
      : std::runtime_error(message), status(status), param(std::move(param)) {}
  int status;         // 400, 404, 405, 413, 429, 503, ...
  std::string param;  // the request field at fault, or ""

  // The error's "type" for the status, as vLLM names them: "BadRequestError", "NotFoundError", ...
  std::string type() const;
};

// {"error": {...}} for `error`, as OpenAI and vLLM write it.
std::string error_body(const ApiError& error);

}  // namespace loom::serve
