#include "tools/loom/server_bench.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <regex>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "loom/error.h"
#include "tools/loom/run_summary.h"

namespace loom::cli {

namespace {

namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Endpoint {
  std::string host;
  std::string port;
};

Endpoint parse_url(const std::string& url) {
  static const std::regex pattern(R"(^http://([^/:]+):([0-9]+)/?$)");
  std::smatch m;
  if (!std::regex_match(url, m, pattern))
    throw UsageError("--server " + url + ": expected http://HOST:PORT (say http://127.0.0.1:8000)");
  return {m[1], m[2]};
}

// One HTTP request on a fresh connection; the response's body handed to `on_body` as it arrives.
template <typename OnBody>
int exchange(const Endpoint& at, const std::string& method, const std::string& target, const std::string& body,
             OnBody on_body) {
  boost::asio::io_context context;
  tcp::resolver resolver(context);
  tcp::socket socket(context);
  boost::asio::connect(socket, resolver.resolve(at.host, at.port));
  socket.set_option(tcp::no_delay(true));
  http::request<http::string_body> request{http::string_to_verb(method), target, 11};
  request.set(http::field::host, at.host);
  request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  http::write(socket, request);
  boost::beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(socket, buffer, parser);
  char chunk[8192];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    boost::beast::error_code ec;
    http::read_some(socket, buffer, parser, ec);  // returns with what arrived: each event timed as it comes
    if (ec && ec != http::error::need_buffer) throw boost::system::system_error(ec);
    on_body(std::string_view(chunk, sizeof chunk - parser.get().body().size));
  }
  return static_cast<int>(parser.get().result_int());
}

struct Outcome {
  bool ok = false;
  std::string error;
  std::size_t prompt_tokens = 0, output_tokens = 0;
  double ttft_s = 0, e2e_s = 0;
  std::vector<double> itl_s;  // between events that brought tokens
};

Outcome send(const Endpoint& at, const std::string& model, const Request& r) {
  Outcome out;
  out.prompt_tokens = r.prompt_token_ids.size();
  const json body = {{"model", model},
                     {"prompt", r.prompt_token_ids},
                     {"max_tokens", r.params.max_tokens},
                     {"ignore_eos", true},
                     {"temperature", 0},
                     {"stream", true},
                     {"return_token_ids", true}};
  const auto start = Clock::now();
  auto last = start;
  std::string pending, error_body;
  try {
    const int status = exchange(at, "POST", "/v1/completions", body.dump(), [&](std::string_view bytes) {
      pending.append(bytes);
      for (std::size_t end; (end = pending.find("\n\n")) != std::string::npos; pending.erase(0, end + 2)) {
        const std::string event = pending.substr(0, end);
        if (event.rfind("data: ", 0) != 0 || event == "data: [DONE]") continue;
        const json chunk = json::parse(event.substr(6), nullptr, false);
        if (chunk.contains("error")) {
          out.error = chunk["error"].value("message", "an error event");
          continue;
        }
        if (!chunk.contains("choices") || chunk["choices"].empty()) continue;
        const std::size_t tokens = chunk["choices"][0].value("token_ids", json::array()).size();
        if (tokens == 0) continue;
        const auto now = Clock::now();
        if (out.output_tokens == 0)
          out.ttft_s = std::chrono::duration<double>(now - start).count();
        else
          out.itl_s.push_back(std::chrono::duration<double>(now - last).count());
        last = now;
        out.output_tokens += tokens;
      }
      if (error_body.size() < 4096) error_body.append(bytes);
    });
    out.e2e_s = std::chrono::duration<double>(Clock::now() - start).count();
    if (status != 200) out.error = "HTTP " + std::to_string(status) + ": " + error_body.substr(0, 300);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  out.ok = out.error.empty() && out.output_tokens > 0;
  return out;
}

// The served model's name (the first of /v1/models), and its vocabulary where the server says it
// (Loom does; others: the Llama-2 vocabulary's 32000, prompts drawn from it).
std::pair<std::string, int> served_model(const Endpoint& at) {
  std::string body;
  int status = 0;
  try {
    status = exchange(at, "GET", "/v1/models", "", [&](std::string_view bytes) { body.append(bytes); });
  } catch (const std::exception& e) {
    throw UsageError("--server http://" + at.host + ":" + at.port + ": cannot reach it (" + e.what() + ")");
  }
  const json models = json::parse(body, nullptr, false);
  if (status != 200 || !models.contains("data") || models["data"].empty())
    throw UsageError("--server http://" + at.host + ":" + at.port + ": GET /v1/models answered " +
                     std::to_string(status) + ", not a model list");
  const json& m = models["data"][0];
  return {m.value("id", ""), m.value("vocab_size", 32000)};
}

json percentile_json(const Percentiles& p) {
  return {{"mean", p.mean}, {"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}};
}

}  // namespace

int run_server_bench(const ServerBenchOptions& o) {
  const Endpoint at = parse_url(o.url);
  const auto [model, vocab] = served_model(at);
  SamplingParams sampling;
  const std::vector<Request> requests = random_requests(o.num_prompts, o.input, o.output, vocab, o.seed, sampling);
  // Poisson arrivals: exponential gaps of mean 1/rate, seeded.
  std::mt19937_64 rng(o.seed ^ 0x5DEECE66Dull);
  std::exponential_distribution<double> gap(std::isinf(o.rate) ? 1.0 : o.rate);
  std::vector<Outcome> outcomes(requests.size());
  std::vector<std::thread> clients;
  const auto start = Clock::now();
  auto arrival = start;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (!std::isinf(o.rate) && i > 0)
      arrival += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng)));
    std::this_thread::sleep_until(arrival);
    clients.emplace_back([&, i] { outcomes[i] = send(at, model, requests[i]); });
  }
  for (std::thread& t : clients) t.join();
  const double duration = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> ttft, tpot, itl, e2e;
  std::size_t completed = 0, good = 0, input_tokens = 0, output_tokens = 0;
  std::string first_error;
  for (const Outcome& r : outcomes) {
    if (!r.ok) {
      if (first_error.empty()) first_error = r.error;
      continue;
    }
    ++completed;
    input_tokens += r.prompt_tokens;
    output_tokens += r.output_tokens;
    ttft.push_back(r.ttft_s * 1e3);
    e2e.push_back(r.e2e_s * 1e3);
    const double per_token = r.output_tokens > 1 ? (r.e2e_s - r.ttft_s) * 1e3 / double(r.output_tokens - 1) : 0;
    if (r.output_tokens > 1) tpot.push_back(per_token);
    for (double s : r.itl_s) itl.push_back(s * 1e3);
    good += r.ttft_s * 1e3 <= o.slo_ttft_ms && per_token <= o.slo_tpot_ms;
  }
  const std::size_t failed = requests.size() - completed;
  const Percentiles p_ttft = percentiles(ttft), p_tpot = percentiles(tpot), p_itl = percentiles(itl),
                    p_e2e = percentiles(e2e);
  if (o.json) {
    std::cout << json{{"server", o.url},
                      {"model", model},
                      {"rate", std::isinf(o.rate) ? json("inf") : json(o.rate)},
                      {"requests", requests.size()},
                      {"completed", completed},
                      {"failed", failed},
                      {"duration_s", duration},
                      {"input_tokens", input_tokens},
                      {"output_tokens", output_tokens},
                      {"request_throughput", completed / duration},
                      {"output_tok_s", output_tokens / duration},
                      {"total_tok_s", (input_tokens + output_tokens) / duration},
                      {"goodput", good / duration},
                      {"slo", {{"ttft_ms", o.slo_ttft_ms}, {"tpot_ms", o.slo_tpot_ms}}},
                      {"ttft_ms", percentile_json(p_ttft)},
                      {"tpot_ms", percentile_json(p_tpot)},
                      {"itl_ms", percentile_json(p_itl)},
                      {"e2e_ms", percentile_json(p_e2e)}}
                     .dump(2)
              << "\n";
  } else {
    char arrivals[64] = "every request at once";
    if (!std::isinf(o.rate)) std::snprintf(arrivals, sizeof arrivals, "Poisson arrivals at %g requests/s", o.rate);
    std::printf("server          %s, model %s, %s\n", o.url.c_str(), model.c_str(), arrivals);
    std::printf("requests        %zu completed, %zu failed in %.2f s: %.2f requests/s\n", completed, failed, duration,
                completed / duration);
    std::printf("tokens          %zu in, %zu out: %.1f output tokens/s, %.1f total\n", input_tokens, output_tokens,
                output_tokens / duration, (input_tokens + output_tokens) / duration);
    std::printf("goodput         %.2f requests/s with TTFT <= %.0f ms and TPOT <= %.0f ms (%zu of %zu)\n",
                good / duration, o.slo_ttft_ms, o.slo_tpot_ms, good, requests.size());
    for (const auto& [name, p] : {std::pair{"TTFT", p_ttft}, {"TPOT", p_tpot}, {"ITL", p_itl}, {"E2E", p_e2e}})
      std::printf("%-4s ms         mean %.2f, p50 %.2f, p90 %.2f, p99 %.2f\n", name, p.mean, p.p50, p.p90, p.p99);
  }
  if (failed == 0) return 0;
  std::cerr << "loom bench: " << failed << " requests failed; the first: " << first_error << "\n";
  return 3;
}

}  // namespace loom::cli
