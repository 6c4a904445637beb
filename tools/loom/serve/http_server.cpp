#include "tools/loom/serve/http_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <csignal>
#include <iostream>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "loom/error.h"
#include "tools/loom/serve/api_error.h"
#include "tools/loom/serve/endpoints.h"

namespace loom::serve {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr std::uint64_t kMaxBodyBytes = 64ull << 20;  // a prompt of ~16M tokens' text is already beyond any context

// An Exchange on a connection's socket, with blocking writes.
class SocketExchange : public Exchange {
 public:
  SocketExchange(tcp::socket& socket, unsigned version, bool keep_alive)
      : socket_(socket), version_(version), keep_alive_(keep_alive) {}

  bool respond(int status, std::string_view content_type, const std::string& body) override {
    http::response<http::string_body> response{static_cast<http::status>(status), version_};
    response.set(http::field::server, "loom");
    response.set(http::field::content_type, boost::beast::string_view(content_type.data(), content_type.size()));
    response.keep_alive(keep_alive_);
    response.body() = body;
    response.prepare_payload();
    boost::beast::error_code ec;
    http::write(socket_, response, ec);
    return !ec;
  }

  bool start_events() override {
    http::response<http::empty_body> response{http::status::ok, version_};
    response.set(http::field::server, "loom");
    response.set(http::field::content_type, "text/event-stream");
    response.set(http::field::cache_control, "no-cache");
    response.keep_alive(keep_alive_);
    response.chunked(true);
    http::response_serializer<http::empty_body> serializer{response};
    boost::beast::error_code ec;
    http::write_header(socket_, serializer, ec);
    return !ec;
  }

  bool send_event(const std::string& data) override {
    const std::string event = "data: " + data + "\n\n";
    boost::beast::error_code ec;
    net::write(socket_, http::make_chunk(net::buffer(event)), ec);
    return !ec;
  }

  bool end_events() override {
    boost::beast::error_code ec;
    net::write(socket_, http::make_chunk_last(), ec);
    return !ec;
  }

  // The peer's half-close (or reset) shows as POLLRDHUP/POLLHUP, or as a readable socket whose
  // read would return nothing. Bytes of a next, pipelined request leave it open.
  bool client_gone() override {
    pollfd p{socket_.native_handle(), POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
    char byte;
    return (p.revents & POLLIN) && ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
  }

 private:
  tcp::socket& socket_;
  unsigned version_;
  bool keep_alive_;
};

tcp::endpoint endpoint_of(const ServerOptions& options) {
  boost::system::error_code ec;
  const net::ip::address address = net::ip::make_address(options.host, ec);
  if (ec) throw UsageError("--host " + options.host + " is not an IP address (say 127.0.0.1, or 0.0.0.0 for all)");
  return {address, options.port};
}

}  // namespace

HttpServer::HttpServer(const ServerOptions& options) : max_connections_(options.max_connections), acceptor_(context_) {
  const tcp::endpoint endpoint = endpoint_of(options);
  const std::string where = options.host + ":" + std::to_string(options.port);
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (ec == net::error::address_in_use)
    throw UsageError("cannot listen on " + where +
                     ": the port is already taken (another server?); choose another "
                     "with --port");
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw UsageError("cannot listen on " + where + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
}

HttpServer::~HttpServer() { close_connections(std::chrono::milliseconds(0)); }

void HttpServer::run(const ServedModel& model, EngineLoop& loop, bool stop_on_signals) {
  model_ = &model;
  loop_ = &loop;
  if (stop_on_signals) {
    signals_.emplace(context_, SIGINT, SIGTERM);
    signals_->async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      signal_ = signal;
      stop();
    });
  }
  accept_next();
  context_.run();
}

void HttpServer::stop() {
  net::post(context_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    if (signals_) signals_->cancel(ignored);
  });
}

void HttpServer::accept_next() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    if (!ec) {
      // Each streamed event is a small write: without TCP_NODELAY, Nagle's algorithm holds it
      // back until the client's delayed ACK (40 ms on Linux), and tokens arrive in bursts.
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      reap_finished_connections();
      std::lock_guard lock(connections_mutex_);
      if (connections_.size() >= max_connections_) {
        SocketExchange(socket, 11, false)
            .respond(503, "application/json",
                     error_body(ApiError(503, "the server has " + std::to_string(max_connections_) +
                                                  " connections open, its limit (--max-connections)")));
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
      } else {
        auto& connection = *connections_.emplace_back(std::make_unique<Connection>(std::move(socket)));
        connection.thread = std::thread([this, &connection] { serve(connection); });
      }
    }
    accept_next();
  });
}

void HttpServer::serve(Connection& connection) {
  tcp::socket& socket = connection.socket;
  boost::beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    boost::beast::error_code ec;
    http::read_header(socket, buffer, parser, ec);
    // curl sends a large body only after "100 Continue" (or after waiting a second for it).
    if (!ec && !parser.is_done() &&
        boost::beast::iequals(parser.get()[http::field::expect], boost::beast::string_view("100-continue"))) {
      http::response<http::empty_body> go_on{http::status::continue_, parser.get().version()};
      http::write(socket, go_on, ec);
    }
    if (!ec && !parser.is_done()) http::read(socket, buffer, parser, ec);
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted || (ec && closing_))
      break;
    if (ec) {
      const bool too_large = ec == http::error::body_limit;
      SocketExchange(socket, 11, false)
          .respond(too_large ? 413 : 400, "application/json",
                   error_body(ApiError(too_large ? 413 : 400, too_large ? "the body is larger than 64 MiB"
                                                                        : "malformed HTTP request: " + ec.message())));
      break;
    }
    const auto& request = parser.get();
    const bool keep_alive = request.keep_alive() && !closing_;
    SocketExchange exchange(socket, request.version(), keep_alive);
    if (!handle_request(std::string_view(request.method_string().data(), request.method_string().size()),
                        std::string_view(request.target().data(), request.target().size()), request.body(), exchange,
                        *model_, *loop_) ||
        !keep_alive)
      break;
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  connection.done = true;
}

void HttpServer::reap_finished_connections() {
  std::lock_guard lock(connections_mutex_);
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (!(*it)->done) {
      ++it;
      continue;
    }
    (*it)->thread.join();
    it = connections_.erase(it);
  }
}

void HttpServer::close_connections(std::chrono::milliseconds timeout) {
  closing_ = true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  {
    // A connection waiting for its next request wakes with an error and ends; one in the middle
    // of an exchange finishes it first (its read side is not used until then).
    std::lock_guard lock(connections_mutex_);
    for (auto& c : connections_) ::shutdown(c->socket.native_handle(), SHUT_RD);
  }
  for (;;) {
    reap_finished_connections();
    std::lock_guard lock(connections_mutex_);
    if (connections_.empty()) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      for (auto& c : connections_) ::shutdown(c->socket.native_handle(), SHUT_RDWR);
      for (auto& c : connections_) c->thread.join();
      connections_.clear();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace loom::serve
