// `loom serve` over real HTTP on 127.0.0.1: an in-process server (engine, engine loop, HTTP
// server on a free port) for the endpoints, and the `loom` binary itself for what only a process
// shows (SIGTERM, a taken port, equality with `loom generate`). Load stays on loopback, bounded.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/config/config.h"
#include "core/engine/engine.h"
#include "core/io/model_loader.h"
#include "core/io/random_model.h"
#include "run_loom.h"
#include "support/http_client.h"
#include "support/random_llama.h"
#include "support/stories260k.h"
#include "support/test_models.h"
#include "tools/loom/serve/engine_loop.h"
#include "tools/loom/serve/http_server.h"

namespace loom::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

// A small random Llama with Llama-2's tokenizer: text in and out, and the llama-2 chat template.
const fs::path& text_model_dir() {
  static const fs::path dir = random_text_llama_dir(11, 512, "serve_http");
  return dir;
}

Config test_config(const std::vector<std::string>& overrides) {
  return load_config_from(parse_config_text("", "test.toml"), ".", overrides);
}

// A random model's shape slow enough on the CPU (a few ms a token) that a long request is still
// running while a test makes several more calls or sends a signal, even on a loaded machine.
io::ModelConfig slow_config() {
  io::ModelConfig c = io::tiny_config(io::Architecture::kLlama);
  c.hidden_size = 512;
  c.intermediate_size = 1408;
  c.num_hidden_layers = 6;
  c.num_attention_heads = 8;
  c.head_dim = 64;
  c.vocab_size = 512;
  c.max_position_embeddings = 512;
  return c;
}

const io::LoadedModel& slow_model() {
  static const io::LoadedModel model = random_model(slow_config(), 5, "serve_slow");
  return model;
}

// An engine, its loop and an HTTP server on a free loopback port, run on a thread of their own.
class Served {
 public:
  explicit Served(const std::vector<std::string>& overrides = {}, serve::EngineLoopOptions options = {},
                  bool text_model = false, const io::LoadedModel* model = nullptr)
      : registry_(PluginRegistry::default_search_path()), server_(serve::ServerOptions{"127.0.0.1", 0, 1024}) {
    std::optional<Tokenizer> tokenizer;
    if (text_model) tokenizer = Tokenizer::load(text_model_dir() / "tokenizer.model");
    engine_ = std::make_unique<Engine>(test_config(overrides), registry_,
                                       model        ? *model
                                       : text_model ? io::load_hf_model(text_model_dir())
                                                    : stories260k(),
                                       std::move(tokenizer));
    model_.name = "m";
    model_.max_model_len = engine_->max_model_len();
    model_.vocab_size = static_cast<std::size_t>(engine_->model().config().vocab_size);
    model_.defaults.max_tokens = 16;
    model_.tokenizer = engine_->tokenizer() ? &*engine_->tokenizer() : nullptr;
    model_.chat = serve::ChatTemplate::for_model(engine_->model().config().architecture, model_.tokenizer);
    loop_ = std::make_unique<serve::EngineLoop>(*engine_, options);
    thread_ = std::thread([this] { server_.run(model_, *loop_, false); });
  }
  ~Served() {
    server_.stop();
    thread_.join();
    loop_->drain(5s);
    server_.close_connections(5s);
  }
  unsigned short port() const { return server_.port(); }
  const Tokenizer* tokenizer() const { return model_.tokenizer; }

 private:
  PluginRegistry registry_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<serve::EngineLoop> loop_;
  serve::ServedModel model_;
  serve::HttpServer server_;
  std::thread thread_;
};

// The same requests through an engine of its own, offline: id -> result.
std::map<std::string, RequestResult> offline(const std::vector<Request>& requests, bool text_model = false) {
  PluginRegistry registry(PluginRegistry::default_search_path());
  std::optional<Tokenizer> tokenizer;
  if (text_model) tokenizer = Tokenizer::load(text_model_dir() / "tokenizer.model");
  Engine engine(test_config({}), registry, text_model ? io::load_hf_model(text_model_dir()) : stories260k(),
                std::move(tokenizer));
  for (const Request& r : requests) engine.submit(r);
  std::map<std::string, RequestResult> out;
  for (int steps = 0; engine.has_unfinished() && steps < 100000; ++steps)
    for (RequestResult& r : engine.step()) out[r.id + "#" + std::to_string(r.index)] = std::move(r);
  return out;
}

std::vector<std::int32_t> prompt_of(int i) { return {1, 100 + i % 200, 250 + (i * 7) % 200, 30 + (i * 13) % 400, 400}; }

Request greedy(const std::string& id, std::vector<std::int32_t> prompt, int max_tokens) {
  Request r;
  r.id = id;
  r.prompt_token_ids = std::move(prompt);
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  return r;
}

json completion(unsigned short port, const json& body, int expected_status = 200) {
  const HttpReply reply = http_call(port, "POST", "/v1/completions", body.dump());
  EXPECT_EQ(reply.status, expected_status) << reply.body;
  return json::parse(reply.body);
}

// The metric's value from a /metrics text ("name{labels} value" lines); -1 when absent.
double metric(const std::string& text, const std::string& name_and_labels) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(name_and_labels + " ", 0) == 0) return std::stod(line.substr(name_and_labels.size() + 1));
  return -1;
}

bool wait_for_metric(unsigned short port, const std::string& name_and_labels, double value) {
  for (int i = 0; i < 500; ++i) {
    if (metric(http_call(port, "GET", "/metrics").body, name_and_labels) == value) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

const std::string kModel = "{model_name=\"m\"}";

TEST(ServeCompletions, GreedyTokenIdsEqualAnOfflineEngineRunForOnePromptAndAListOfPrompts) {
  Served server;
  std::vector<Request> expected_requests;
  for (int i = 0; i < 3; ++i)
    expected_requests.push_back(greedy(std::string("r").append(std::to_string(i)), prompt_of(i), 20));
  const auto expected = offline(expected_requests);

  json one = completion(server.port(), {{"prompt", prompt_of(0)}, {"max_tokens", 20}, {"ignore_eos", true}});
  EXPECT_EQ(one["object"], "text_completion");
  EXPECT_EQ(one["model"], "m");
  ASSERT_EQ(one["choices"].size(), 1u);
  EXPECT_EQ(one["choices"][0]["token_ids"].get<std::vector<std::int32_t>>(), expected.at("r0#0").token_ids)
      << "a model without a tokenizer always returns token ids";
  EXPECT_EQ(one["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(one["usage"]["completion_tokens"], 20);
  EXPECT_EQ(one["usage"]["prompt_tokens"], 5);

  json list =
      completion(server.port(),
                 {{"prompt", {prompt_of(0), prompt_of(1), prompt_of(2)}}, {"max_tokens", 20}, {"ignore_eos", true}});
  ASSERT_EQ(list["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(list["choices"][i]["index"], i);
    EXPECT_EQ(list["choices"][i]["token_ids"].get<std::vector<std::int32_t>>(),
              expected.at(std::string("r").append(std::to_string(i)) + "#0").token_ids);
  }
  EXPECT_EQ(list["usage"]["prompt_tokens"], 15);
  EXPECT_EQ(list["usage"]["total_tokens"], 75);
}

TEST(ServeCompletions, SixtyFourConcurrentStreamingClientsEachGetTheirWholeStreamInOrder) {
  Served server({"engine.max_num_seqs=16"});
  constexpr int kClients = 64, kTokens = 24;
  std::vector<Request> requests;
  for (int i = 0; i < kClients; ++i)
    requests.push_back(greedy(std::string("c").append(std::to_string(i)), prompt_of(i), kTokens));
  const auto expected = offline(requests);
  std::vector<std::string> bodies(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&, i] {
      const json body = {{"prompt", prompt_of(i)},
                         {"max_tokens", kTokens},
                         {"ignore_eos", true},
                         {"stream", true},
                         {"stream_options", {{"include_usage", true}}}};
      const HttpReply reply = http_call(server.port(), "POST", "/v1/completions", body.dump());
      bodies[i] = reply.status == 200 && reply.content_type == "text/event-stream" ? reply.body : "";
    });
  for (std::thread& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) {
    const std::vector<std::string> events = sse_data(bodies[i]);
    ASSERT_GE(events.size(), 3u) << "client " << i << ": " << bodies[i];
    EXPECT_EQ(events.back(), "[DONE]");
    const json usage = json::parse(events[events.size() - 2]);
    EXPECT_TRUE(usage["choices"].empty());
    EXPECT_EQ(usage["usage"]["completion_tokens"], kTokens);
    std::vector<std::int32_t> tokens;
    for (std::size_t e = 0; e + 2 < events.size(); ++e) {
      const json chunk = json::parse(events[e]);
      ASSERT_EQ(chunk["choices"].size(), 1u);
      const json& choice = chunk["choices"][0];
      for (std::int32_t t : choice["token_ids"].get<std::vector<std::int32_t>>()) tokens.push_back(t);
      const bool last = e + 3 == events.size();
      EXPECT_EQ(choice["finish_reason"].is_null(), !last) << "client " << i << " chunk " << e;
    }
    EXPECT_EQ(tokens, expected.at(std::string("c").append(std::to_string(i)) + "#0").token_ids) << "client " << i;
  }
}

TEST(ServeCompletions, AClientThatDisconnectsMidStreamAbortsItsRequestAndFreesItsBlocks) {
  Served server({}, {}, false, &slow_model());  // still streaming when the client goes
  {
    boost::asio::io_context context;
    boost::asio::ip::tcp::socket socket(context);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
    const std::string body =
        json{{"prompt", prompt_of(3)}, {"max_tokens", 450}, {"ignore_eos", true}, {"stream", true}}.dump();
    const std::string request =
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    boost::asio::write(socket, boost::asio::buffer(request));
    std::string received;
    char buffer[512];
    while (received.find("data: ") == std::string::npos)
      received.append(buffer, socket.read_some(boost::asio::buffer(buffer)));
    EXPECT_NE(received.find("200 OK"), std::string::npos);
  }  // the client goes away after its first tokens
  EXPECT_TRUE(
      wait_for_metric(server.port(), "loom:request_success_total{model_name=\"m\",finished_reason=\"abort\"}", 1));
  const std::string metrics = http_call(server.port(), "GET", "/metrics").body;
  EXPECT_EQ(metric(metrics, "loom:kv_blocks_used" + kModel), 0);
  EXPECT_EQ(metric(metrics, "loom:num_requests_running" + kModel), 0);
  EXPECT_LT(metric(metrics, "loom:generation_tokens_total" + kModel), 450);
  EXPECT_EQ(completion(server.port(), {{"prompt", prompt_of(1)}, {"max_tokens", 3}})["choices"][0]["token_ids"].size(),
            3u)
      << "the server goes on";
}

TEST(ServeErrors, MalformedRequestsGetAnOpenAiErrorBodyWithTheirStatusAndTheServerGoesOn) {
  Served server;
  const std::vector<std::tuple<std::string, std::string, std::string, int, std::string>> cases = {
      {"POST", "/v1/completions", "{", 400, "not valid JSON"},
      {"POST", "/v1/completions", "[1, 2]", 400, "JSON object"},
      {"POST", "/v1/completions", R"({"max_tokens": 3})", 400, "missing \"prompt\""},
      {"POST", "/v1/completions", R"({"prompt": 5})", 400, "\"prompt\" must be"},
      {"POST", "/v1/completions", R"({"prompt": [1, 2], "temperature": "hot"})", 400, "\"temperature\""},
      {"POST", "/v1/completions", R"({"prompt": [1, 99999]})", 400, "outside the vocabulary"},
      {"POST", "/v1/completions", R"({"prompt": [[1, 2], [1, 3]], "n": 1000})", 400, "'n' = 1000"},
      {"POST", "/v1/completions", R"({"prompt": "text"})", 400, "no tokenizer"},
      {"POST", "/v1/completions", R"({"prompt": [1], "model": "other"})", 404, "does not exist"},
      {"POST", "/v1/completions", R"({"prompt": [1], "logit_bias": {"5": 1}})", 400, "logit_bias"},
      {"POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}]})", 400, "no tokenizer"},
      {"GET", "/v1/completions", "", 405, "use POST"},
      {"GET", "/v2/unknown", "", 404, "no endpoint"},
  };
  for (const auto& [method, target, body, status, words] : cases) {
    const HttpReply reply = http_call(server.port(), method, target, body);
    EXPECT_EQ(reply.status, status) << body;
    const json error = json::parse(reply.body);
    ASSERT_TRUE(error.contains("error")) << reply.body;
    EXPECT_NE(error["error"]["message"].get<std::string>().find(words), std::string::npos) << reply.body;
    EXPECT_EQ(error["error"]["code"], status);
    EXPECT_TRUE(error["error"]["type"].is_string());
  }
  EXPECT_EQ(completion(server.port(), {{"prompt", prompt_of(2)}, {"max_tokens", 2}})["choices"][0]["token_ids"].size(),
            2u);
  EXPECT_EQ(http_call(server.port(), "GET", "/health").status, 200);
}

TEST(ServeCompletions, AClientThatExpects100ContinueGetsItBeforeSendingItsBody) {
  Served server;
  boost::asio::io_context context;
  boost::asio::ip::tcp::socket socket(context);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
  const std::string body = json{{"prompt", prompt_of(1)}, {"max_tokens", 2}}.dump();
  const std::string head =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  boost::asio::write(socket, boost::asio::buffer(head));
  // Up to 5 s for the interim response: a server that waits for the body fails the test, not hangs it.
  std::string received;
  char buffer[512];
  pollfd readable{socket.native_handle(), POLLIN, 0};
  while (received.find("\r\n\r\n") == std::string::npos && ::poll(&readable, 1, 5000) == 1) {
    const ssize_t n = ::recv(socket.native_handle(), buffer, sizeof buffer, 0);
    if (n <= 0) break;
    received.append(buffer, static_cast<std::size_t>(n));
  }
  ASSERT_EQ(received.rfind("HTTP/1.1 100 Continue", 0), 0u) << "no 100 Continue within 5 s: " << received;
  boost::asio::write(socket, boost::asio::buffer(body));
  boost::beast::flat_buffer rest;
  boost::beast::http::response<boost::beast::http::string_body> reply;
  boost::beast::http::read(socket, rest, reply);
  EXPECT_EQ(reply.result_int(), 200u);
  EXPECT_EQ(json::parse(reply.body())["choices"][0]["token_ids"].size(), 2u);
}

TEST(ServeErrors, ASampleMoreThanTheWaitingLimitGets429AndTheOthersAreServed) {
  Served server({"engine.max_num_seqs=1"}, serve::EngineLoopOptions{1}, false, &slow_model());
  std::vector<int> statuses(2, 0);
  std::thread running([&] {
    statuses[0] = http_call(server.port(), "POST", "/v1/completions",
                            json{{"prompt", prompt_of(0)}, {"max_tokens", 200}, {"ignore_eos", true}}.dump())
                      .status;
  });
  EXPECT_TRUE(wait_for_metric(server.port(), "loom:num_requests_running" + kModel, 1));
  std::thread waiting([&] {
    statuses[1] =
        http_call(server.port(), "POST", "/v1/completions", json{{"prompt", prompt_of(1)}, {"max_tokens", 2}}.dump())
            .status;
  });
  EXPECT_TRUE(wait_for_metric(server.port(), "loom:num_requests_waiting" + kModel, 1));
  const HttpReply refused = http_call(server.port(), "POST", "/v1/completions", json{{"prompt", prompt_of(2)}}.dump());
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(json::parse(refused.body)["error"]["type"], "RateLimitError");
  running.join();
  waiting.join();
  EXPECT_EQ(statuses, (std::vector<int>{200, 200}));
}

TEST(ServeMetrics, TheTextParsesAsPrometheusAndCountsTheRequestsServed) {
  Served server;
  for (int i = 0; i < 3; ++i)
    completion(server.port(), {{"prompt", prompt_of(i)}, {"max_tokens", 5 + i}, {"ignore_eos", true}});
  const HttpReply reply = http_call(server.port(), "GET", "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.content_type.rfind("text/plain", 0), 0u);
  const std::regex sample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*\{([a-zA-Z_]+="[^"]*",?)*\} -?[0-9.e+-]+$)");
  const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::istringstream lines(reply.body);
  int samples = 0;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_TRUE(std::regex_match(line, sample) || std::regex_match(line, comment)) << line;
    samples += line[0] != '#';
  }
  EXPECT_GT(samples, 60);
  const std::string& m = reply.body;
  EXPECT_EQ(metric(m, "loom:request_success_total{model_name=\"m\",finished_reason=\"length\"}"), 3);
  EXPECT_EQ(metric(m, "loom:generation_tokens_total" + kModel), 5 + 6 + 7);
  EXPECT_EQ(metric(m, "loom:prompt_tokens_total" + kModel), 15);
  EXPECT_EQ(metric(m, "loom:e2e_request_latency_seconds_count" + kModel), 3);
  EXPECT_EQ(metric(m, "loom:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"+Inf\"}"), 3);
  EXPECT_EQ(metric(m, "loom:request_generation_tokens_bucket{model_name=\"m\",le=\"5\"}"), 1);
  EXPECT_EQ(metric(m, "loom:request_generation_tokens_bucket{model_name=\"m\",le=\"10\"}"), 3);
}

TEST(ServeCompletions, LogprobsOfEachTokenAreTheEnginesWithTheTopAlternatives) {
  Served server({}, {}, /*text_model=*/true);
  Request r;
  r.id = "lp";
  r.prompt = "Once upon a time";
  r.params.max_tokens = 6;
  r.params.ignore_eos = true;
  r.params.logprobs = 3;
  const RequestResult expected = offline({r}, true).at("lp#0");
  const json reply = completion(server.port(), {{"prompt", "Once upon a time"},
                                                {"max_tokens", 6},
                                                {"ignore_eos", true},
                                                {"logprobs", 3},
                                                {"return_token_ids", true}});
  const json& choice = reply["choices"][0];
  EXPECT_EQ(choice["text"], expected.text);
  EXPECT_EQ(choice["token_ids"].get<std::vector<std::int32_t>>(), expected.token_ids);
  EXPECT_EQ(choice["prompt_token_ids"].get<std::vector<std::int32_t>>(),
            server.tokenizer()->encode("Once upon a time", true));
  const json& lp = choice["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_DOUBLE_EQ(lp["token_logprobs"][i].get<double>(), (*expected.logprobs)[i].logprob);
    EXPECT_EQ(lp["top_logprobs"][i].size(), 3u);
    EXPECT_LE(lp["top_logprobs"][i].size(), 3u);
  }
  std::string joined;
  for (const json& t : lp["tokens"]) joined += t.get<std::string>();
  EXPECT_EQ(joined.substr(joined.size() - expected.text.size()), expected.text) << "token texts spell the text";
  EXPECT_EQ(lp["text_offset"][0], 0);
}

TEST(ServeCompletions, EchoWithLogprobsScoresThePromptAsAnEvaluationHarnessAsks) {
  Served server({}, {}, /*text_model=*/true);
  Request r;
  r.id = "score";
  r.prompt = "The capital of France is Paris";
  r.params.max_tokens = 0;
  r.params.prompt_logprobs = 1;
  const RequestResult expected = offline({r}, true).at("score#0");
  ASSERT_TRUE(expected.prompt_logprobs.has_value());
  const json reply = completion(
      server.port(), {{"prompt", *r.prompt}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 1}, {"temperature", 0}});
  const json& choice = reply["choices"][0];
  EXPECT_EQ(choice["text"], *r.prompt) << "echo with nothing generated: the prompt";
  const json& lp = choice["logprobs"];
  const std::size_t prompt_tokens = expected.prompt_logprobs->size() + 1;
  ASSERT_EQ(lp["tokens"].size(), prompt_tokens);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null()) << "the first prompt token has no log-probability";
  for (std::size_t i = 1; i < prompt_tokens; ++i)
    EXPECT_DOUBLE_EQ(lp["token_logprobs"][i].get<double>(), (*expected.prompt_logprobs)[i - 1].logprob) << i;
  EXPECT_EQ(reply["usage"]["completion_tokens"], 0);
  const HttpReply streamed = http_call(server.port(), "POST", "/v1/completions",
                                       json{{"prompt", "x"}, {"echo", true}, {"logprobs", 1}, {"stream", true}}.dump());
  EXPECT_EQ(streamed.status, 400) << "echo with logprobs is answered whole";
}

TEST(ServeCompletions, PromptLogprobsComeInVllmsFormatWithTheChoice) {
  Served server;
  Request r = greedy("p", prompt_of(5), 3);
  r.params.prompt_logprobs = 2;
  const RequestResult expected = offline({r}).at("p#0");
  for (const bool stream : {false, true}) {
    const json body = {
        {"prompt", prompt_of(5)}, {"max_tokens", 3}, {"ignore_eos", true}, {"prompt_logprobs", 2}, {"stream", stream}};
    const HttpReply reply = http_call(server.port(), "POST", "/v1/completions", body.dump());
    json choice;
    if (stream) {
      const std::vector<std::string> events = sse_data(reply.body);
      ASSERT_GE(events.size(), 2u);
      choice = json::parse(events[events.size() - 2])["choices"][0];  // the last chunk carries them
    } else {
      choice = json::parse(reply.body)["choices"][0];
    }
    const json& list = choice["prompt_logprobs"];
    ASSERT_EQ(list.size(), prompt_of(5).size()) << reply.body;
    EXPECT_TRUE(list[0].is_null());
    for (std::size_t i = 1; i < list.size(); ++i) {
      const TokenLogprobs& want = (*expected.prompt_logprobs)[i - 1];
      EXPECT_DOUBLE_EQ(list[i][std::to_string(want.token)]["logprob"].get<double>(), want.logprob);
      EXPECT_LE(list[i].size(), 3u) << "the token and its top 2";
    }
  }
}

TEST(ServeCompletions, NSamplesOfSeveralPromptsComeInPromptMajorOrderAndRepeatWithTheirSeed) {
  Served server;
  const json body = {{"prompt", {prompt_of(0), prompt_of(1)}},
                     {"n", 2},
                     {"temperature", 1.0},
                     {"seed", 7},
                     {"max_tokens", 8},
                     {"ignore_eos", true}};
  const json first = completion(server.port(), body), second = completion(server.port(), body);
  ASSERT_EQ(first["choices"].size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(first["choices"][i]["index"], i);
    EXPECT_EQ(first["choices"][i]["token_ids"], second["choices"][i]["token_ids"]) << "seeded: reproducible";
  }
  EXPECT_NE(first["choices"][0]["token_ids"], first["choices"][1]["token_ids"]) << "two samples of one prompt differ";
  EXPECT_EQ(first["usage"]["prompt_tokens"], 10) << "each prompt counts once, whatever n";
}

TEST(ServeChat, ChatCompletionsRenderTheLlama2TemplateWholeAndStreamed) {
  Served server({}, {}, /*text_model=*/true);
  const json body = {
      {"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi"}}}},
      {"max_tokens", 5},
      {"ignore_eos", true}};
  const HttpReply whole = http_call(server.port(), "POST", "/v1/chat/completions", body.dump());
  ASSERT_EQ(whole.status, 200) << whole.body;
  const json reply = json::parse(whole.body);
  EXPECT_EQ(reply["object"], "chat.completion");
  EXPECT_EQ(reply["choices"][0]["message"]["role"], "assistant");
  const std::vector<std::int32_t> prompt =
      serve::ChatTemplate::named("llama-2")->render({{"system", "Be brief."}, {"user", "Hi"}}, *server.tokenizer());
  EXPECT_EQ(reply["usage"]["prompt_tokens"], prompt.size());
  EXPECT_EQ(prompt.front(), server.tokenizer()->bos_id());

  json streamed_body = body;
  streamed_body["stream"] = true;
  const HttpReply streamed = http_call(server.port(), "POST", "/v1/chat/completions", streamed_body.dump());
  const std::vector<std::string> events = sse_data(streamed.body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(json::parse(events[0])["object"], "chat.completion.chunk");
  EXPECT_EQ(json::parse(events[0])["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  for (std::size_t e = 0; e + 1 < events.size(); ++e)
    content += json::parse(events[e])["choices"][0]["delta"].value("content", "");
  EXPECT_EQ(content, reply["choices"][0]["message"]["content"]);

  const HttpReply bad = http_call(server.port(), "POST", "/v1/chat/completions",
                                  R"({"messages": [{"role": "assistant", "content": "x"}]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("where \\\"user\\\" is expected"), std::string::npos) << bad.body;
}

// The `loom` binary serving on a free port, its standard error in a file.
class ServerProcess {
 public:
  explicit ServerProcess(const std::string& arguments) {
    log_ = fs::temp_directory_path() / ("loom_serve_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    const std::string command = "exec " + std::string(LOOM_BINARY_DIR) + "/bin/loom serve " + arguments;
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const std::regex listening(R"(listening on http://127\.0\.0\.1:([0-9]+))");
    for (int i = 0; i < 3000 && port_ == 0; ++i) {
      std::smatch m;
      const std::string text = log();
      if (std::regex_search(text, m, listening)) port_ = static_cast<unsigned short>(std::stoi(m[1]));
      std::this_thread::sleep_for(10ms);
    }
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    fs::remove(log_);
  }
  unsigned short port() const { return port_; }
  std::string log() const {
    std::ifstream in(log_);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  // Sends SIGTERM and waits (up to 60 s) for the exit code; -1 when it did not exit.
  int terminate() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 6000; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

 private:
  static inline int counter_ = 0;
  fs::path log_;
  pid_t pid_ = 0;
  unsigned short port_ = 0;
};

std::string stories_config() { return std::string(LOOM_SOURCE_DIR) + "/configs/stories260K.toml"; }

TEST(ServeProcess, GreedyTokenIdsEqualLoomGenerates) {
  const fs::path input = fs::temp_directory_path() / ("loom_serve_generate_" + std::to_string(::getpid()) + ".jsonl");
  {
    std::ofstream out(input);
    for (int i = 0; i < 6; ++i)
      out << json{{"id", std::string("g").append(std::to_string(i))},
                  {"prompt_token_ids", prompt_of(i)},
                  {"max_tokens", 30}}
          << "\n";
  }
  const LoomRun generated =
      run_loom("generate --config " + stories_config() + " --input " + input.string() + " -q", "2>/dev/null");
  ASSERT_EQ(generated.exit_code, 0) << generated.output;
  std::map<std::string, json> by_id;
  std::istringstream lines(generated.output);
  for (std::string line; std::getline(lines, line);) {
    json r = json::parse(line);
    by_id[r["id"]] = r["token_ids"];
  }
  ServerProcess server("--config " + stories_config() + " --port 0");
  ASSERT_NE(server.port(), 0) << server.log();
  for (int i = 0; i < 6; ++i) {
    const json reply = completion(server.port(), {{"prompt", prompt_of(i)}, {"max_tokens", 30}});
    EXPECT_EQ(reply["choices"][0]["token_ids"], by_id.at(std::string("g").append(std::to_string(i)))) << "prompt " << i;
  }
  EXPECT_EQ(server.terminate(), 0);
  fs::remove(input);
}

TEST(ServeProcess, SigtermFinishesTheRunningStreamAndExitsZero) {
  // A model slow enough that the signal comes mid-stream.
  const fs::path dir = fs::temp_directory_path() / ("loom_serve_sigterm_" + std::to_string(::getpid()));
  io::RandomModelSpec spec;
  spec.config = slow_config();
  io::write_random_model(spec, dir);
  // A long shutdown timeout: under a sanitizer the stream takes many times longer.
  ServerProcess server("--model " + dir.string() + " --port 0 --served-model-name slow --shutdown-timeout 600");
  ASSERT_NE(server.port(), 0) << server.log();
  HttpReply streamed;
  std::thread client([&] {
    streamed =
        http_call(server.port(), "POST", "/v1/completions",
                  json{{"prompt", prompt_of(4)}, {"max_tokens", 100}, {"ignore_eos", true}, {"stream", true}}.dump());
  });
  const bool running = wait_for_metric(server.port(), "loom:num_requests_running{model_name=\"slow\"}", 1);
  EXPECT_EQ(server.terminate(), 0) << server.log();
  client.join();
  ASSERT_TRUE(running);
  EXPECT_NE(server.log().find("finishing the 1 unfinished"), std::string::npos) << server.log();
  const std::vector<std::string> events = sse_data(streamed.body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::size_t tokens = 0;
  for (std::size_t e = 0; e + 1 < events.size(); ++e)
    tokens += json::parse(events[e])["choices"][0]["token_ids"].size();
  EXPECT_EQ(tokens, 100u) << "the running request finished in full";
  EXPECT_NE(server.log().find("stopped by SIGTERM"), std::string::npos) << server.log();
  fs::remove_all(dir);
}

TEST(ServeProcess, AQwen2FolderWithTokenizerJsonChatsThroughChatmlAndStreamsWholeCharacters) {
  // A random Qwen2 shape with the Hugging Face-made byte-level tokenizer of tests/data/bpe found
  // beside it as tokenizer.json: the folder's tokenizer, the qwen2 template (auto) and streaming
  // of byte-level tokens, through the `loom` binary.
  const fs::path dir = fs::temp_directory_path() / ("loom_serve_qwen2_" + std::to_string(::getpid()));
  io::RandomModelSpec spec;
  spec.config = io::tiny_config(io::Architecture::kQwen2);
  spec.config.vocab_size = 1536;
  spec.init_std = 0.08f;
  spec.tokenizer_model = fs::path(LOOM_SOURCE_DIR) / "tests" / "data" / "bpe" / "qwen2.tokenizer.json";
  io::write_random_model(spec, dir);
  ServerProcess server("--model " + dir.string() + " --port 0 --served-model-name q");
  ASSERT_NE(server.port(), 0) << server.log();
  EXPECT_NE(server.log().find("chat template: qwen2"), std::string::npos) << server.log();
  const Tokenizer tokenizer = Tokenizer::load(dir / "tokenizer.json");
  const std::vector<serve::ChatMessage> messages = {{"user", "Grüße, 世界!"}};
  const json body = {{"messages", {{{"role", "user"}, {"content", "Grüße, 世界!"}}}},
                     {"max_tokens", 24},
                     {"ignore_eos", true},
                     {"return_token_ids", true}};
  const HttpReply whole = http_call(server.port(), "POST", "/v1/chat/completions", body.dump());
  ASSERT_EQ(whole.status, 200) << whole.body;
  const json reply = json::parse(whole.body);
  EXPECT_EQ(reply["usage"]["prompt_tokens"], serve::ChatTemplate::named("qwen2")->render(messages, tokenizer).size());
  const std::string content = reply["choices"][0]["message"]["content"];
  const std::vector<std::int32_t> ids = reply["choices"][0]["token_ids"];
  EXPECT_EQ(ids.size(), 24u);
  EXPECT_EQ(content, tokenizer.decode(ids));

  json streamed_body = body;
  streamed_body["stream"] = true;
  const HttpReply streamed = http_call(server.port(), "POST", "/v1/chat/completions", streamed_body.dump());
  std::string joined;
  const std::vector<std::string> events = sse_data(streamed.body);
  for (std::size_t e = 0; e + 1 < events.size(); ++e)
    joined += json::parse(events[e])["choices"][0]["delta"].value("content", "");  // parses only whole UTF-8
  EXPECT_EQ(joined, content) << "greedy: the stream spells the whole answer";
  EXPECT_EQ(server.terminate(), 0);
  fs::remove_all(dir);
}

TEST(ServeProcess, BenchAgainstTheServerCountsEveryTokenAtAPoissonRateAndAllAtOnce) {
  ServerProcess server("--config " + stories_config() + " --port 0");
  ASSERT_NE(server.port(), 0) << server.log();
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  for (const std::string rate : {"200", "inf"}) {
    const LoomRun run = run_loom(
        "bench --server " + url + " --rate " + rate + " --num-prompts 24 --input-len 8:32 --output-len 16 --json",
        "2>/dev/null");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    const json report = json::parse(run.output);
    EXPECT_EQ(report["model"], "stories260K");
    EXPECT_EQ(report["completed"], 24);
    EXPECT_EQ(report["output_tokens"], 24 * 16) << "every streamed token counted once";
    EXPECT_GT(report["ttft_ms"]["p50"].get<double>(), 0);
    EXPECT_LE(report["ttft_ms"]["p50"].get<double>(), report["e2e_ms"]["p50"].get<double>());
    EXPECT_GT(report["output_tok_s"].get<double>(), 0);
  }
  const std::string served = http_call(server.port(), "GET", "/metrics").body;
  EXPECT_EQ(metric(served, "loom:generation_tokens_total{model_name=\"stories260K\"}"), 2 * 24 * 16);
  EXPECT_EQ(server.terminate(), 0);
}

TEST(ServeProcess, BenchAgainstNoServerIsAClearErrorWithExitCode2) {
  boost::asio::io_context context;
  boost::asio::ip::tcp::acceptor closed(context, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::string port = std::to_string(closed.local_endpoint().port());
  closed.close();
  const LoomRun run = run_loom("bench --server http://127.0.0.1:" + port + " --num-prompts 2");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("cannot reach it"), std::string::npos) << run.output;
  EXPECT_EQ(run_loom("bench --server localhost --num-prompts 2").exit_code, 2);
}

TEST(ServeProcess, APortAlreadyTakenIsAClearErrorWithExitCode2BeforeTheModelLoads) {
  boost::asio::io_context context;
  boost::asio::ip::tcp::acceptor taken(context, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const LoomRun run =
      run_loom("serve --config " + stories_config() + " --port " + std::to_string(taken.local_endpoint().port()));
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("already taken"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("loaded"), std::string::npos) << "the model was loaded first:\n" << run.output;
}

}  // namespace
}  // namespace loom::testing
