// The endpoints of `loom serve`, apart from the sockets: a request's method, path and body in,
// a response (or a stream of server-sent events) out through an Exchange.
#pragma once

#include <string>
#include <string_view>

#include "tools/loom/serve/engine_loop.h"
#include "tools/loom/serve/http_server.h"

namespace loom::serve {

// One HTTP exchange as the endpoints see it (http_server.cpp implements it on a socket).
class Exchange {
 public:
  virtual ~Exchange() = default;
  // A whole response. Returns false when the client is gone.
  virtual bool respond(int status, std::string_view content_type, const std::string& body) = 0;
  // A 200 text/event-stream response whose events follow; then send_event() per event
  // ("data: <data>\n\n") and end_events(). Each returns false when the client is gone.
  virtual bool start_events() = 0;
  virtual bool send_event(const std::string& data) = 0;
  virtual bool end_events() = 0;
  // The client closed its side of the connection (checked while a response is prepared).
  virtual bool client_gone() = 0;
};

// Answers one request. Returns false when the connection must be closed (the client went away).
bool handle_request(std::string_view method, std::string_view path, const std::string& body, Exchange& exchange,
                    const ServedModel& model, EngineLoop& loop);

}  // namespace loom::serve
