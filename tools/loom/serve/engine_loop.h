// The one engine loop of `loom serve`: a thread that owns the Engine, takes the requests of every
// connection (continuous batching across clients), steps while there is work, and hands each
// request's output to its ResponseStream as it grows. Connections never touch the Engine.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/engine/engine.h"
#include "tools/loom/serve/completion_response.h"
#include "tools/loom/serve/server_metrics.h"

namespace loom::serve {

// What one choice of an HTTP request produced since its last event.
struct ChoiceEvent {
  ChoiceOutput output;            // the text, tokens and logprobs added; finish_reason when it ended
  std::string error;              // why, when finish_reason is "error"
  std::size_t prompt_tokens = 0;  // with the finish
};

// The choices of one HTTP request: the engine loop pushes, the connection's thread takes.
class ResponseStream {
 public:
  explicit ResponseStream(std::size_t num_choices) : unfinished_(num_choices) {}
  void push(ChoiceEvent event);
  // The events since the last call; waits up to `timeout` while there are none.
  std::vector<ChoiceEvent> take(std::chrono::milliseconds timeout);
  // Every choice has finished and its events are taken.
  bool done() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<ChoiceEvent> events_;
  std::size_t unfinished_;
};

struct EngineLoopOptions {
  // More samples than this waiting to run, and submit() answers 429; 0: no limit (they wait).
  std::size_t max_waiting = 0;
};

class EngineLoop {
 public:
  // Borrows `engine` for the loop's lifetime and starts the thread.
  EngineLoop(Engine& engine, EngineLoopOptions options);
  ~EngineLoop();  // aborts what is left and joins the thread
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  // Queues one HTTP request's prompts, each with params.n samples: choice prompt * n + sample.
  // Throws ApiError 429 when too many wait, 503 when the loop is draining or has failed.
  std::shared_ptr<ResponseStream> submit(std::vector<Request> prompts);
  // The client went away: its requests stop and free their KV blocks (their events are dropped).
  void abort(const std::shared_ptr<ResponseStream>& stream);
  // Takes no new request; waits up to `timeout` for the unfinished ones, then aborts the rest.
  // Returns whether every one finished in time.
  bool drain(std::chrono::milliseconds timeout);

  // HTTP requests' prompts submitted and not yet finished.
  std::size_t unfinished() const;
  // False once an engine step threw (the loop then fails every request) or it drains.
  bool healthy() const;
  std::string metrics(const std::string& model) const;

 private:
  struct Choices {  // engine-thread state of one engine request (one prompt)
    std::shared_ptr<ResponseStream> stream;
    std::size_t first_choice = 0;
    struct Sent {
      std::size_t tokens = 0, text = 0;  // tokens and text bytes already pushed
      bool finished = false;
    };
    std::vector<Sent> sent;  // per sample
    std::size_t unfinished = 0;
  };
  void run();
  void step();
  void send_progress();
  void send_result(const RequestResult& result);
  void fail_request(const std::string& id, const std::string& error);
  void fail_everything(const std::string& error);

  Engine& engine_;
  EngineLoopOptions options_;
  // Shared with the connections, under mutex_.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  struct Submission {
    Request request;  // its id given by submit()
    std::shared_ptr<ResponseStream> stream;
    std::size_t first_choice = 0;
  };
  std::vector<Submission> inbox_;
  std::vector<std::shared_ptr<ResponseStream>> aborts_;
  std::condition_variable idle_;    // drain() waits on it
  std::size_t queued_samples_ = 0;  // in the inbox
  bool draining_ = false, stopping_ = false, failed_ = false;
  std::size_t unfinished_requests_ = 0;  // engine requests not yet finished
  RequestMetrics request_metrics_;
  EngineGauges gauges_;
  // The engine thread's own.
  std::unordered_map<std::string, Choices> choices_;  // by engine request id
  std::uint64_t next_id_ = 0;
  std::thread thread_;
};

}  // namespace loom::serve
