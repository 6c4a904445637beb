// drafter/draft_model: a smaller model of the target's vocabulary drafts for it. The engine lends
// the model runner (loom/engine_services.h): the target's device and data type, a KV cache of its
// own, loaded before the target's KV pool is sized so its memory counts. Each step, for every
// sequence about to decode, the draft model first rolls back the drafts the target rejected and
// catches up on what it has not seen (the prompt the first time, then the tokens the target
// emitted), then drafts one token at a time: k forward passes over every drafting sequence at
// once. Greedy sequences get the draft model's greedy tokens; sampled ones get tokens drawn from
// the draft model's distribution at the sequence's temperature, returned with that distribution
// so the engine accepts each with probability min(1, p / q) (Leviathan et al.).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "loom/drafter.h"
#include "loom/engine_services.h"
#include "loom/error.h"

namespace {

using namespace loom::sdk;

const ConfigKeySpec kKeys[] = {
    {"model", KeyType::string, "",
     "the draft model: a Hugging Face folder or llama2.c .bin of the target's vocabulary (relative to the config's "
     "folder)"},
    {"kv_tokens", KeyType::integer, "0",
     "tokens the draft model's KV cache holds; 0 = max_num_seqs sequences of the whole context"},
};

class DraftModelDrafter final : public Drafter {
 public:
  DraftModelDrafter(const EngineInfo& info, const PluginConfig& config) {
    if (config.string("model").empty())
      throw config.invalid("model",
                           "no draft model given: name a Hugging Face folder or a llama2.c .bin file "
                           "of the target's vocabulary");
    if (config.integer("kv_tokens") < 0) throw config.invalid("kv_tokens", "must be 0 (the default) or more");
    if (!info.services) throw loom::Error("drafter/draft_model: this engine lends no model runner");
    try {
      runner_ =
          info.services->load_model(config.string("model"), static_cast<std::uint64_t>(config.integer("kv_tokens")));
    } catch (const loom::ConfigError&) {
      throw;
    } catch (const loom::Error& e) {
      throw config.invalid("model", e.what());
    }
  }

  void propose(std::span<const DraftRequest> requests, std::vector<std::vector<TokenId>>& drafts) override {
    std::vector<std::vector<float>> probabilities(requests.size());
    propose_with_probabilities(requests, drafts, probabilities);
  }

  void propose_with_probabilities(std::span<const DraftRequest> requests, std::vector<std::vector<TokenId>>& drafts,
                                  std::vector<std::vector<float>>& probabilities) override {
    const std::size_t vocab = runner_->shape().vocab_size;
    std::vector<ModelInput> inputs;
    std::vector<std::size_t> of;  // the request of each input
    for (std::size_t r = 0; r < requests.size(); ++r) {
      const DraftRequest& request = requests[r];
      if (request.max_draft_tokens == 0 || request.tokens.empty()) continue;
      inputs.push_back({request.id, catch_up(request)});
      of.push_back(r);
    }
    // Round i feeds each sequence's newest token (its catch-up the first time) and drafts one more.
    std::vector<float> logits;
    while (!inputs.empty()) {
      std::vector<TokenId> next(inputs.size());
      const bool sampled =
          std::any_of(of.begin(), of.end(), [&](std::size_t r) { return requests[r].temperature > 0; });
      logits.resize(sampled ? inputs.size() * vocab : 0);
      runner_->extend(inputs, next, logits);
      std::vector<ModelInput> more;
      std::vector<std::size_t> more_of;
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        const DraftRequest& request = requests[of[i]];
        if (next[i] == kNoRoom) {  // the draft model's cache is full: this sequence drafts what it has
          forget(request.id);
          continue;
        }
        Fed& fed = fed_[request.id];
        fed.tokens.insert(fed.tokens.end(), inputs[i].tokens.begin(), inputs[i].tokens.end());
        std::vector<TokenId>& draft = drafts[of[i]];
        if (request.temperature > 0) {
          std::vector<float>& q = probabilities[of[i]];
          q.resize((draft.size() + 1) * vocab);
          const std::span<float> row(q.data() + draft.size() * vocab, vocab);
          next[i] = draw(std::span<const float>(logits).subspan(i * vocab, vocab), request, draft.size(), row);
        }
        draft.push_back(next[i]);
        if (draft.size() < request.max_draft_tokens) {
          more.push_back({request.id, std::span<const TokenId>(&draft.back(), 1)});
          more_of.push_back(of[i]);
        }
      }
      // `more` points into `drafts`, which the next round appends to only after extend() has read it.
      inputs = std::move(more);
      of = std::move(more_of);
    }
  }

  void on_accepted(SeqId, std::size_t) override {}  // the next proposal sees what stood in the tokens
  void on_finished(SeqId seq) override { forget(seq); }

 private:
  // The tokens the runner holds for a sequence (its tokens, then the drafts fed after them), and
  // how many of the sequence's tokens were known at the last proposal (they never change).
  struct Fed {
    std::vector<TokenId> tokens;
    std::size_t known = 0;
  };

  // Rolls the runner back to what it shares with the sequence (the drafts the target rejected go)
  // and returns the tokens it has not seen, at least the last one (whose successor is drafted).
  std::span<const TokenId> catch_up(const DraftRequest& request) {
    Fed& fed = fed_[request.id];
    const std::span<const TokenId> tokens = request.tokens;
    std::size_t common = std::min({fed.known, fed.tokens.size(), tokens.size()});
    while (common < fed.tokens.size() && common < tokens.size() && fed.tokens[common] == tokens[common]) ++common;
    common = std::min(common, tokens.size() - 1);
    runner_->truncate(request.id, common);
    fed.tokens.resize(common);
    fed.known = tokens.size();
    return tokens.subspan(common);
  }

  // Fills q with softmax(logits / temperature) and draws a token from it, the draw seeded by the
  // request's seed and the draft's place.
  static TokenId draw(std::span<const float> logits, const DraftRequest& request, std::size_t place,
                      std::span<float> q) {
    const float top = *std::max_element(logits.begin(), logits.end());
    double total = 0;
    for (std::size_t t = 0; t < logits.size(); ++t) {
      q[t] = std::isfinite(logits[t]) ? std::exp((logits[t] - top) / request.temperature) : 0.0f;
      total += q[t];
    }
    for (float& p : q) p = static_cast<float>(p / total);
    const double u = uniform(request.seed, place);
    double mass = 0;
    for (std::size_t t = 0; t < q.size(); ++t)
      if ((mass += q[t]) > u) return static_cast<TokenId>(t);
    return static_cast<TokenId>(std::max_element(q.begin(), q.end()) - q.begin());
  }

  // A uniform number in [0, 1) from (seed, place): SplitMix64 of their mix, top 53 bits.
  static double uniform(std::uint64_t seed, std::uint64_t place) {
    std::uint64_t z = seed + (place + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  }

  void forget(SeqId seq) {
    runner_->release(seq);
    fed_.erase(seq);
  }

  std::unique_ptr<ModelRunner> runner_;
  std::unordered_map<SeqId, Fed> fed_;
};

}  // namespace

LOOM_PLUGIN(drafter, "draft_model", "1.0.0", "A smaller model of the target's vocabulary drafts greedily",
            DraftModelDrafter, kKeys)
