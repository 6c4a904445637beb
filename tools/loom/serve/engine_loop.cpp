#include "tools/loom/serve/engine_loop.h"

#include <algorithm>

#include "core/sampling/validate.h"
#include "tools/loom/serve/api_error.h"

namespace loom::serve {

void ResponseStream::push(ChoiceEvent event) {
  {
    std::lock_guard lock(mutex_);
    if (!event.output.finish_reason.empty() && unfinished_ > 0) --unfinished_;
    events_.push_back(std::move(event));
  }
  ready_.notify_all();
}

std::vector<ChoiceEvent> ResponseStream::take(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout, [&] { return !events_.empty(); });
  std::vector<ChoiceEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

bool ResponseStream::done() const {
  std::lock_guard lock(mutex_);
  return unfinished_ == 0 && events_.empty();
}

EngineLoop::EngineLoop(Engine& engine, EngineLoopOptions options) : engine_(engine), options_(options) {
  gauges_.stats = engine_.stats();
  thread_ = std::thread([this] { run(); });
}

EngineLoop::~EngineLoop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<ResponseStream> EngineLoop::submit(std::vector<Request> prompts) {
  std::size_t samples = 0;
  for (const Request& r : prompts) samples += static_cast<std::size_t>(num_results(r.params));
  auto stream = std::make_shared<ResponseStream>(samples);
  {
    std::lock_guard lock(mutex_);
    if (failed_) throw ApiError(503, "the engine failed and serves no more requests; see the server's log");
    if (draining_ || stopping_) throw ApiError(503, "the server is shutting down");
    if (options_.max_waiting > 0 && gauges_.waiting + queued_samples_ >= options_.max_waiting)
      throw ApiError(429, std::to_string(gauges_.waiting + queued_samples_) +
                              " samples are waiting, the server's limit (--max-waiting " +
                              std::to_string(options_.max_waiting) + "); try again later");
    std::size_t first_choice = 0;
    for (Request& r : prompts) {
      r.id = "req-" + std::to_string(next_id_++);
      const auto n = static_cast<std::size_t>(num_results(r.params));
      inbox_.push_back({std::move(r), stream, first_choice});
      first_choice += n;
      queued_samples_ += n;
      ++unfinished_requests_;
    }
  }
  wake_.notify_all();
  return stream;
}

void EngineLoop::abort(const std::shared_ptr<ResponseStream>& stream) {
  {
    std::lock_guard lock(mutex_);
    aborts_.push_back(stream);
  }
  wake_.notify_all();
}

bool EngineLoop::drain(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  draining_ = true;
  const bool finished = idle_.wait_for(lock, timeout, [&] { return unfinished_requests_ == 0 || failed_; });
  if (finished) return unfinished_requests_ == 0;
  aborts_.push_back(nullptr);  // every request
  wake_.notify_all();
  idle_.wait_for(lock, std::chrono::seconds(10), [&] { return unfinished_requests_ == 0 || failed_; });
  return false;
}

std::size_t EngineLoop::unfinished() const {
  std::lock_guard lock(mutex_);
  return unfinished_requests_;
}

bool EngineLoop::healthy() const {
  std::lock_guard lock(mutex_);
  return !failed_ && !draining_ && !stopping_;
}

std::string EngineLoop::metrics(const std::string& model) const {
  std::lock_guard lock(mutex_);
  return prometheus_text(request_metrics_, gauges_, model);
}

void EngineLoop::run() {
  std::vector<Submission> submissions;
  std::vector<std::shared_ptr<ResponseStream>> aborts;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] {
        return stopping_ || !inbox_.empty() || !aborts_.empty() || (!failed_ && engine_.has_unfinished());
      });
      if (stopping_) aborts_.push_back(nullptr);
      submissions.swap(inbox_);
      aborts.swap(aborts_);
      queued_samples_ = 0;
      if (stopping_ && (failed_ || choices_.empty()) && submissions.empty()) return;
    }
    for (Submission& s : submissions) {
      const auto n = static_cast<std::size_t>(num_results(s.request.params));
      choices_[s.request.id] = Choices{s.stream, s.first_choice, std::vector<Choices::Sent>(n), n};
      try {
        engine_.submit(s.request);
      } catch (const std::exception& e) {  // not a request error (those come back as results): this one fails
        fail_request(s.request.id, std::string("the engine could not take the request: ") + e.what());
      }
    }
    submissions.clear();
    for (const auto& stream : aborts)
      for (const auto& [id, c] : choices_)
        if (!stream || c.stream == stream) engine_.abort(id);
    aborts.clear();
    if (failed_) {
      fail_everything("the engine failed earlier; see the server's log");
      continue;
    }
    if (engine_.has_unfinished()) step();
  }
}

void EngineLoop::step() {
  std::vector<RequestResult> results;
  try {
    results = engine_.step();
  } catch (const std::exception& e) {
    fail_everything(std::string("the engine failed: ") + e.what());
    return;
  }
  {  // counted before any client hears of its result, so a /metrics read after a response counts it
    std::lock_guard lock(mutex_);
    gauges_.running = engine_.num_running();
    gauges_.waiting = engine_.num_waiting();
    gauges_.stats = engine_.stats();
    for (const RequestResult& r : results) request_metrics_.record(r);
  }
  send_progress();
  for (const RequestResult& r : results) send_result(r);
  std::lock_guard lock(mutex_);
  if (unfinished_requests_ == 0) idle_.notify_all();
}

void EngineLoop::send_progress() {
  engine_.visit_progress([&](const SampleProgress& p) {
    auto it = choices_.find(p.request_id);
    if (it == choices_.end()) return;
    Choices::Sent& sent = it->second.sent[static_cast<std::size_t>(p.index)];
    if (p.token_ids.size() == sent.tokens) return;
    ChoiceEvent event;
    event.output.index = it->second.first_choice + static_cast<std::size_t>(p.index);
    event.output.token_ids.assign(p.token_ids.begin() + static_cast<std::ptrdiff_t>(sent.tokens), p.token_ids.end());
    if (p.logprobs.size() >= p.token_ids.size())
      event.output.logprobs.assign(p.logprobs.begin() + static_cast<std::ptrdiff_t>(sent.tokens), p.logprobs.end());
    if (p.text.size() > sent.text) event.output.text = std::string(p.text.substr(sent.text));
    sent.tokens = p.token_ids.size();
    sent.text = std::max(sent.text, p.text.size());
    it->second.stream->push(std::move(event));
  });
}

void EngineLoop::send_result(const RequestResult& r) {
  auto it = choices_.find(r.id);
  if (it == choices_.end()) return;
  Choices& c = it->second;
  Choices::Sent& sent = c.sent[static_cast<std::size_t>(r.index)];
  ChoiceEvent event;
  event.output.index = c.first_choice + static_cast<std::size_t>(r.index);
  if (r.token_ids.size() > sent.tokens)
    event.output.token_ids.assign(r.token_ids.begin() + static_cast<std::ptrdiff_t>(sent.tokens), r.token_ids.end());
  if (r.logprobs && r.logprobs->size() > sent.tokens)
    event.output.logprobs.assign(r.logprobs->begin() + static_cast<std::ptrdiff_t>(sent.tokens), r.logprobs->end());
  if (r.text.size() > sent.text) event.output.text = r.text.substr(sent.text);
  if (r.prompt_logprobs) event.output.prompt_logprobs = *r.prompt_logprobs;
  event.output.finish_reason = r.finish_reason;
  event.error = r.error;
  event.prompt_tokens = r.prompt_tokens;
  sent.finished = true;
  c.stream->push(std::move(event));
  if (--c.unfinished > 0) return;
  choices_.erase(it);
  std::lock_guard lock(mutex_);
  --unfinished_requests_;
}

void EngineLoop::fail_request(const std::string& id, const std::string& error) {
  Choices& c = choices_.at(id);
  for (std::size_t i = 0; i < c.sent.size(); ++i) {
    ChoiceEvent event;
    event.output.index = c.first_choice + i;
    event.output.finish_reason = "error";
    event.error = error;
    c.stream->push(std::move(event));
  }
  choices_.erase(id);
  std::lock_guard lock(mutex_);
  --unfinished_requests_;
}

void EngineLoop::fail_everything(const std::string& error) {
  for (auto& [id, c] : choices_)
    for (std::size_t i = 0; i < c.sent.size(); ++i) {
      if (c.sent[i].finished) continue;
      ChoiceEvent event;
      event.output.index = c.first_choice + i;
      event.output.finish_reason = "error";
      event.error = error;
      c.stream->push(std::move(event));
    }
  std::lock_guard lock(mutex_);
  unfinished_requests_ -= choices_.size();
  choices_.clear();
  failed_ = true;
  idle_.notify_all();
}

}  // namespace loom::serve
