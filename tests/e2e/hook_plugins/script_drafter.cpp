// drafter/script: proposes the next tokens of whichever line of its `script` file (token ids
// separated by spaces) continues the sequence, else the fixed `tokens`; `wrong_at` >= 0 replaces
// that draft position with another token, so that verification rejects from there. Logs every
// call (call_log.h).
#include <fstream>
#include <sstream>
#include <vector>

#include "hook_plugins/call_log.h"
#include "loom/drafter.h"

namespace {

using loom::sdk::TokenId;

const loom::sdk::ConfigKeySpec kKeys[] = {
    {"script", loom::sdk::KeyType::string, "", "file of token sequences to draft from, one a line"},
    {"tokens", loom::sdk::KeyType::string, "5 6 7", "drafts when no script line matches"},
    {"wrong_at", loom::sdk::KeyType::integer, "-1", "draft position made wrong on purpose (-1: none)"},
    {"log", loom::sdk::KeyType::string, "", "file the calls are appended to (\"\": none)"},
};

std::vector<TokenId> parse_tokens(const std::string& line) {
  std::vector<TokenId> tokens;
  std::istringstream in(line);
  for (TokenId t; in >> t;) tokens.push_back(t);
  return tokens;
}

class ScriptDrafter final : public loom::sdk::Drafter {
 public:
  ScriptDrafter(const loom::sdk::EngineInfo&, const loom::sdk::PluginConfig& config)
      : fixed_(parse_tokens(config.string("tokens"))),
        wrong_at_(config.integer("wrong_at")),
        log_(config.string("log")) {
    if (const std::string& path = config.string("script"); !path.empty()) {
      std::ifstream in(path);
      if (!in) throw config.invalid("script", "cannot be read");
      for (std::string line; std::getline(in, line);) script_.push_back(parse_tokens(line));
    }
  }

  void propose(std::span<const loom::sdk::DraftRequest> requests, std::vector<std::vector<TokenId>>& drafts) override {
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const auto& r = requests[i];
      std::vector<TokenId> d = continuation(r.tokens);
      if (d.size() > r.max_draft_tokens) d.resize(r.max_draft_tokens);
      if (wrong_at_ >= 0 && static_cast<std::size_t>(wrong_at_) < d.size()) d[wrong_at_] = d[wrong_at_] == 3 ? 4 : 3;
      log_.write("propose", r.id, r.tokens.size(), d.size());
      drafts[i] = std::move(d);
    }
  }
  void on_accepted(loom::sdk::SeqId seq, std::size_t num_accepted) override {
    log_.write("on_accepted", seq, num_accepted);
  }
  void on_finished(loom::sdk::SeqId seq) override { log_.write("on_finished", seq); }

 private:
  std::vector<TokenId> continuation(std::span<const TokenId> tokens) const {
    for (const auto& line : script_)
      if (line.size() > tokens.size() && std::equal(tokens.begin(), tokens.end(), line.begin()))
        return {line.begin() + tokens.size(), line.end()};
    return fixed_;
  }

  std::vector<TokenId> fixed_;
  std::int64_t wrong_at_;
  loom::hooks::CallLog log_;
  std::vector<std::vector<TokenId>> script_;
};

}  // namespace

LOOM_PLUGIN(drafter, "script", "1.0.0",
            "Test fixture: drafts from a script of token sequences (or fixed tokens), logs every call", ScriptDrafter,
            kKeys)
