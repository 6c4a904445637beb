// What a server needs of the engine beyond batch generation: stopping a request whose client
// went away, and the output of the samples still running, for streaming.
#include <algorithm>

#include "core/engine/engine.h"

namespace loom {

namespace {

// The bytes of the output so far that no later token can change (SampleProgress::text): all but
// what could begin a stop string, as append_token last found it.
std::size_t settled_text_bytes(const Sequence& seq) {
  if (seq.params.stop.empty()) return seq.text.size();
  // Before min_tokens a stop string is not yet looked for, and then it is looked for in the whole text.
  if (seq.num_output_tokens() <= static_cast<std::size_t>(std::max(0, seq.params.min_tokens))) return 0;
  return seq.text.size() - seq.stop_hold_back;
}

}  // namespace

std::size_t Engine::abort(const std::string& request_id) {
  std::size_t stopped = 0;
  for (auto it = sequences_.begin(); it != sequences_.end();) {
    Sequence& seq = it->second;
    if (seq.request_id != request_id) {
      ++it;
      continue;
    }
    release_blocks(seq.id);
    forget(seq.id);
    finish(seq, "abort", finished_);
    stopped += 1 + seq.unforked_samples.size();
    finish_unforked_samples(seq, finished_);
    it = sequences_.erase(it);
  }
  return stopped;
}

void Engine::visit_progress(const std::function<void(const SampleProgress&)>& visit) const {
  for (const auto& [id, seq] : sequences_) {
    if (seq.num_output_tokens() == 0) continue;
    visit(SampleProgress{seq.request_id, seq.sample_index, seq.output(),
                         std::string_view(seq.text).substr(0, settled_text_bytes(seq)), seq.logprobs});
  }
}

std::size_t Engine::num_running() const {
  return static_cast<std::size_t>(std::count_if(sequences_.begin(), sequences_.end(), [](const auto& entry) {
    return entry.second.state == sdk::SeqState::running;
  }));
}

std::size_t Engine::num_waiting() const {
  std::size_t waiting = 0;
  for (const auto& [id, seq] : sequences_)
    waiting += (seq.state == sdk::SeqState::waiting ? 1 : 0) + seq.unforked_samples.size();
  return waiting;
}

}  // namespace loom
