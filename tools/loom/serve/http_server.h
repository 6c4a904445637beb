// The HTTP side of `loom serve`, on Boost.Beast: an acceptor on one thread, each connection on a
// thread of its own (blocking reads and writes, keep-alive), every request handed to the one
// EngineLoop. Endpoints: POST /v1/completions, POST /v1/chat/completions, GET /v1/models,
// GET /health, GET /metrics (docs/server.md).
//
// A thread per connection keeps each exchange, streaming included, a straight line of code; the
// cost is a thread (and its stack) per open connection, bounded by max_connections.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>

#include "core/tokenizer/tokenizer.h"
#include "tools/loom/serve/chat_template.h"
#include "tools/loom/serve/engine_loop.h"

namespace loom::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;           // 0: any free port (port() says which)
  std::size_t max_connections = 1024;  // beyond, a new connection gets 503 and is closed
};

// What the endpoints need to know of the model.
struct ServedModel {
  std::string name;  // "model" in requests and responses
  std::size_t max_model_len = 0;
  std::size_t vocab_size = 0;
  SamplingParams defaults;               // [sampling] of the config
  const Tokenizer* tokenizer = nullptr;  // null: prompts as token ids only
  std::optional<ChatTemplate> chat;      // null: /v1/chat/completions answers 400
};

class HttpServer {
 public:
  // Binds and listens (before the model loads, so a taken port costs nothing); throws UsageError
  // when the address is taken or cannot be used.
  explicit HttpServer(const ServerOptions& options);
  ~HttpServer();  // closes every connection and joins its thread
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const { return port_; }

  // Accepts connections, each served from `model` and `loop` (both outliving the server), until
  // stop() or, when `stop_on_signals`, SIGINT or SIGTERM.
  void run(const ServedModel& model, EngineLoop& loop, bool stop_on_signals);
  // Stops accepting; run() returns. Safe from any thread.
  void stop();
  // The signal that stopped run(), or 0.
  int stopped_by() const { return signal_; }
  // After run(): tells connections to close after their current exchange, wakes idle ones and
  // waits up to `timeout` for all to end.
  void close_connections(std::chrono::milliseconds timeout);

 private:
  struct Connection {
    explicit Connection(boost::asio::ip::tcp::socket s) : socket(std::move(s)) {}
    boost::asio::ip::tcp::socket socket;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void accept_next();
  void serve(Connection& connection);
  void reap_finished_connections();

  const ServedModel* model_ = nullptr;
  EngineLoop* loop_ = nullptr;
  std::size_t max_connections_;
  boost::asio::io_context context_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::optional<boost::asio::signal_set> signals_;
  std::uint16_t port_ = 0;
  std::atomic<int> signal_{0};
  std::atomic<bool> closing_{false};
  std::mutex connections_mutex_;
  std::list<std::unique_ptr<Connection>> connections_;
};

}  // namespace loom::serve
