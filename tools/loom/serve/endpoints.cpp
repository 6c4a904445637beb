#include "tools/loom/serve/endpoints.h"

#include <atomic>
#include <chrono>
#include <random>

#include "core/sampling/validate.h"
#include "tools/loom/serve/api_error.h"
#include "tools/loom/serve/chat_request.h"
#include "tools/loom/serve/completion_request.h"
#include "tools/loom/serve/completion_response.h"

namespace loom::serve {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(20);  // how often a waiting exchange looks for its client
constexpr std::string_view kJson = "application/json";

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "cmpl-<16 hex digits>": a random run prefix and a counter, unique within the server's life.
std::string response_id(const char* prefix) {
  static const std::uint64_t run = std::random_device{}() * 0x9E3779B97F4A7C15ull;
  static std::atomic<std::uint64_t> counter{0};
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(run + counter++));
  return std::string(prefix) + id;
}

TokenText token_text_of(const Tokenizer* tokenizer) {
  if (!tokenizer) return [](std::int32_t id) { return "token_id:" + std::to_string(id); };
  // A token's own bytes (a space for sentencepiece's marker; maybe part of a character, which the
  // response's JSON writes as U+FFFD).
  return [tokenizer](std::int32_t id) { return tokenizer->token_bytes(id); };
}

// One completion or chat request as the engine loop runs it.
struct Generation {
  ResponseHead head;
  ResponseOptions options;
  std::vector<Request> prompts;
  std::vector<std::vector<std::int32_t>> prompt_ids;  // per prompt, for return_token_ids
  std::vector<std::string> echo;                      // per prompt: the prompt's text when echoed
  std::size_t samples_per_prompt = 1;
  std::size_t num_choices() const { return prompts.size() * samples_per_prompt; }
};

bool respond_error(Exchange& exchange, const ApiError& error) {
  return exchange.respond(error.status, kJson, error_body(error));
}

// Whether every event is a failure before any token: the request is answered with an error.
bool failed_before_generating(const std::vector<ChoiceEvent>& events) {
  if (events.empty()) return false;
  for (const ChoiceEvent& e : events)
    if (e.output.finish_reason != "error" || !e.output.token_ids.empty()) return false;
  return true;
}

// Adds what the first event of a choice carries besides the model's output: the echoed prompt
// and the prompt's ids.
void open_choice(ChoiceOutput& output, const Generation& g) {
  const std::size_t prompt = output.index / g.samples_per_prompt;
  if (g.options.echo) output.text = g.echo[prompt] + output.text;
  if (g.options.return_token_ids) output.prompt_token_ids = g.prompt_ids[prompt];
  if (!g.prompt_ids[prompt].empty()) output.prompt_first_token = g.prompt_ids[prompt].front();
}

void count_usage(Usage& usage, const ChoiceEvent& e, const Generation& g) {
  usage.completion_tokens += e.output.token_ids.size();
  // The prompt counts once per prompt, whatever its number of samples.
  if (!e.output.finish_reason.empty() && e.output.index % g.samples_per_prompt == 0)
    usage.prompt_tokens += e.prompt_tokens;
}

bool whole_response(Generation& g, ResponseStream& stream, const std::shared_ptr<ResponseStream>& handle,
                    Exchange& exchange, EngineLoop& loop, const TokenText& token_text) {
  std::vector<ChoiceOutput> choices(g.num_choices());
  std::vector<std::string> errors(g.num_choices());
  Usage usage;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    choices[i].index = i;
    open_choice(choices[i], g);
  }
  for (;;) {
    for (ChoiceEvent& e : stream.take(kPollInterval)) {
      ChoiceOutput& c = choices[e.output.index];
      c.text += e.output.text;
      c.token_ids.insert(c.token_ids.end(), e.output.token_ids.begin(), e.output.token_ids.end());
      c.logprobs.insert(c.logprobs.end(), e.output.logprobs.begin(), e.output.logprobs.end());
      if (!e.output.finish_reason.empty()) c.finish_reason = e.output.finish_reason;
      if (!e.output.prompt_logprobs.empty()) c.prompt_logprobs = std::move(e.output.prompt_logprobs);
      if (!e.error.empty()) errors[e.output.index] = e.error;
      count_usage(usage, e, g);
    }
    if (stream.done()) break;
    if (exchange.client_gone()) {
      loop.abort(handle);
      return false;
    }
  }
  for (std::size_t i = 0; i < choices.size(); ++i)
    if (choices[i].finish_reason == "error")
      return respond_error(exchange, ApiError(choices[i].token_ids.empty() ? 400 : 500, errors[i]));
  return exchange.respond(200, kJson, response_body(g.head, choices, g.options, usage, token_text));
}

bool streamed_response(Generation& g, ResponseStream& stream, const std::shared_ptr<ResponseStream>& handle,
                       Exchange& exchange, EngineLoop& loop, const TokenText& token_text) {
  // The first events decide between an error response (the request failed before generating)
  // and a stream.
  std::vector<ChoiceEvent> events;
  while ((events = stream.take(kPollInterval)).empty() && !stream.done())
    if (exchange.client_gone()) {
      loop.abort(handle);
      return false;
    }
  if (failed_before_generating(events) && stream.done()) return respond_error(exchange, ApiError(400, events[0].error));
  if (!exchange.start_events()) {
    loop.abort(handle);
    return false;
  }
  std::vector<bool> opened(g.num_choices(), false);
  std::vector<std::size_t> offsets(g.num_choices(), 0);
  Usage usage;
  for (;;) {
    for (ChoiceEvent& e : events) {
      ChoiceOutput& out = e.output;
      const bool first = !opened[out.index];
      if (first) open_choice(out, g);
      // A stream's prompt_logprobs come with the choice's last chunk.
      out.prompt_first_token =
          out.prompt_logprobs.empty() ? -1 : g.prompt_ids[out.index / g.samples_per_prompt].front();
      opened[out.index] = true;
      out.text_offset = offsets[out.index];
      for (const TokenLogprobs& lp : out.logprobs) offsets[out.index] += token_text(lp.token).size();
      count_usage(usage, e, g);
      const std::string data =
          e.error.empty() ? chunk_body(g.head, out, g.options, token_text, first) : error_body(ApiError(500, e.error));
      if (!exchange.send_event(data)) {
        loop.abort(handle);
        return false;
      }
    }
    if (stream.done()) break;
    events = stream.take(kPollInterval);
    if (events.empty() && exchange.client_gone()) {
      loop.abort(handle);
      return false;
    }
  }
  if (g.options.include_usage && !exchange.send_event(usage_chunk_body(g.head, usage))) return false;
  return exchange.send_event("[DONE]") && exchange.end_events();
}

bool generate(Generation& g, Exchange& exchange, const ServedModel& model, EngineLoop& loop) {
  if (!model.tokenizer) g.options.return_token_ids = true;  // ids are all such a client gets
  std::shared_ptr<ResponseStream> stream = loop.submit(g.prompts);
  const TokenText token_text = token_text_of(model.tokenizer);
  return g.options.stream ? streamed_response(g, *stream, stream, exchange, loop, token_text)
                          : whole_response(g, *stream, stream, exchange, loop, token_text);
}

bool completions(const std::string& body, Exchange& exchange, const ServedModel& model, EngineLoop& loop) {
  CompletionRequest request = parse_completion_request(body, model.defaults, model.name);
  Generation g;
  g.head = {response_id("cmpl-"), unix_now(), model.name, false};
  g.options = request.options;
  g.samples_per_prompt = static_cast<std::size_t>(num_results(request.prompts.front().params));
  for (const Request& r : request.prompts) {
    if (r.prompt && !model.tokenizer)
      throw ApiError(400, "the model has no tokenizer: give the prompt as token ids", "prompt");
    g.prompt_ids.push_back(r.prompt ? model.tokenizer->encode(*r.prompt, true) : r.prompt_token_ids);
    g.echo.push_back(r.prompt ? *r.prompt : model.tokenizer ? model.tokenizer->decode(r.prompt_token_ids) : "");
  }
  g.prompts = std::move(request.prompts);
  return generate(g, exchange, model, loop);
}

bool chat_completions(const std::string& body, Exchange& exchange, const ServedModel& model, EngineLoop& loop) {
  ChatRequest request = parse_chat_request(body, model.defaults, model.name);
  if (!model.tokenizer)
    throw ApiError(400, "the model has no tokenizer, so no chat: use /v1/completions with token ids");
  if (!model.chat)
    throw ApiError(400, "Loom knows no chat template for this model: start the server with --chat-template NAME (" +
                            ChatTemplate::names() + "), or use /v1/completions");
  Generation g;
  g.head = {response_id("chatcmpl-"), unix_now(), model.name, true};
  g.options = request.options;
  g.samples_per_prompt = static_cast<std::size_t>(num_results(request.params));
  Request r;
  r.prompt_token_ids = model.chat->render(request.messages, *model.tokenizer);
  r.params = request.params;
  g.prompt_ids.push_back(r.prompt_token_ids);
  g.echo.emplace_back();
  g.prompts.push_back(std::move(r));
  return generate(g, exchange, model, loop);
}

}  // namespace

bool handle_request(std::string_view method, std::string_view target, const std::string& body, Exchange& exchange,
                    const ServedModel& model, EngineLoop& loop) {
  const std::string_view path = target.substr(0, target.find('?'));
  try {
    const bool get = method == "GET", post = method == "POST";
    if (path == "/health") {
      if (!get) throw ApiError(405, "use GET for /health");
      if (!loop.healthy()) throw ApiError(503, "the server is shutting down, or its engine failed");
      return exchange.respond(200, "text/plain", "");
    }
    if (path == "/v1/models") {
      if (!get) throw ApiError(405, "use GET for /v1/models");
      return exchange.respond(200, kJson, models_body(model.name, unix_now(), model.max_model_len, model.vocab_size));
    }
    if (path == "/metrics") {
      if (!get) throw ApiError(405, "use GET for /metrics");
      return exchange.respond(200, "text/plain; version=0.0.4; charset=utf-8", loop.metrics(model.name));
    }
    if (path == "/v1/completions") {
      if (!post) throw ApiError(405, "use POST for /v1/completions");
      return completions(body, exchange, model, loop);
    }
    if (path == "/v1/chat/completions") {
      if (!post) throw ApiError(405, "use POST for /v1/chat/completions");
      return chat_completions(body, exchange, model, loop);
    }
    throw ApiError(404, "no endpoint " + std::string(path) +
                            "; the endpoints are POST /v1/completions, POST /v1/chat/completions, GET /v1/models, "
                            "GET /health and GET /metrics");
  } catch (const ApiError& e) {
    return respond_error(exchange, e);
  } catch (const std::exception& e) {
    return respond_error(exchange, ApiError(500, std::string("internal error: ") + e.what()));
  }
}

}  // namespace loom::serve
