#include "tools/loom/serve/api_error.h"

#include <nlohmann/json.hpp>

namespace loom::serve {

using json = nlohmann::json;

std::string ApiError::type() const {
  switch (status) {
    case 400:
      return "BadRequestError";
    case 404:
      return "NotFoundError";
    case 405:
      return "MethodNotAllowed";
    case 413:
      return "RequestTooLarge";
    case 429:
      return "RateLimitError";
    case 503:
      return "ServiceUnavailable";
    default:
      return "InternalServerError";
  }
}

std::string error_body(const ApiError& error) {
  return json({{"error",
                {{"message", error.what()},
                 {"type", error.type()},
                 {"param", error.param.empty() ? json(nullptr) : json(error.param)},
                 {"code", error.status}}}})
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace loom::serve
