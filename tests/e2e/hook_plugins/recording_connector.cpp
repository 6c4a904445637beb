// kv_connector/recording: keeps every block it is given (saved or evicted) in a map keyed by its
// content hash, offers to load the blocks it holds, and logs every call (call_log.h). A load
// copies each layer only when the engine waits for that layer (or for the whole load): outputs
// that match a run without it show that every layer waited before reading the cache. With
// `corrupt` it loads zeros instead, which must change the outputs: proof that loaded KV is read.
// With `fail_layer_wait` = L, every wait for layer L throws (after copying nothing of it). With
// `pending_asks` = N it answers kLoadPending the first N times it is asked about each prompt, as a
// connector still fetching KV from a prefill instance does.
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "hook_plugins/call_log.h"
#include "loom/block_hash.h"
#include "loom/error.h"
#include "loom/kv_connector.h"

namespace {

using loom::sdk::BlockHash;
using loom::sdk::KvCacheView;
using loom::sdk::KvTransfer;
using loom::sdk::Stream;
using loom::sdk::TokenId;

const loom::sdk::ConfigKeySpec kKeys[] = {
    {"log", loom::sdk::KeyType::string, "", "file the calls are appended to (\"\": none)"},
    {"corrupt", loom::sdk::KeyType::boolean, "false", "load zeros instead of the stored KV"},
    {"fail_layer_wait", loom::sdk::KeyType::integer, "-1", "the layer whose wait_for_layer_load throws (-1: none)"},
    {"pending_asks", loom::sdk::KeyType::integer, "0", "answer kLoadPending this many times per prompt first"},
};

class RecordingConnector final : public loom::sdk::KvConnector {
 public:
  RecordingConnector(const loom::sdk::EngineInfo& info, const loom::sdk::PluginConfig& config)
      : block_size_(info.block_size),
        corrupt_(config.boolean("corrupt")),
        fail_layer_wait_(config.integer("fail_layer_wait")),
        pending_asks_(config.integer("pending_asks")),
        log_(config.string("log")) {}

  std::size_t num_loadable_tokens(std::span<const TokenId> tokens, std::span<const BlockHash> hashes,
                                  std::size_t num_local_tokens) override {
    if (hashes.size() != tokens.size() / block_size_ ||
        (!hashes.empty() && hashes.back() != loom::sdk::full_block_hashes(tokens, block_size_).back()))
      throw loom::Error("recording connector: the engine's block hashes are not the tokens'");
    if (asks_[std::vector<TokenId>(tokens.begin(), tokens.end())]++ < pending_asks_) {
      log_.write("num_loadable_tokens", tokens.size(), num_local_tokens, "pending");
      return kLoadPending;
    }
    std::size_t block = num_local_tokens / block_size_;
    while (block < hashes.size() && store_.contains(hashes[block])) ++block;
    const std::size_t loadable = block * block_size_ - num_local_tokens;
    log_.write("num_loadable_tokens", tokens.size(), num_local_tokens, loadable);
    return loadable;
  }

  void start_load(std::span<const KvTransfer> loads, const KvCacheView& cache, Stream) override {
    cache_ = cache;
    pending_.clear();
    for (const KvTransfer& t : loads) {
      log_.write("start_load", t.seq, t.first_token, t.num_tokens, t.blocks.size(), t.hashes.size());
      for (std::size_t i = 0; i < t.blocks.size(); ++i) pending_.emplace_back(t.blocks[i], &store_.at(t.hashes[i]));
    }
  }

  void wait_for_load(Stream) override {
    log_.write("wait_for_load");
    for (std::size_t l = 0; l < cache_.layers.size(); ++l) load_layer(l);
    pending_.clear();
  }

  void wait_for_layer_load(std::uint32_t layer, Stream) override {
    log_.write("wait_for_layer_load", layer);
    if (static_cast<std::int64_t>(layer) == fail_layer_wait_) throw loom::Error("recording connector: layer lost");
    load_layer(layer);
  }

  void save(std::span<const KvTransfer> saves, const KvCacheView& cache, Stream) override {
    for (const KvTransfer& t : saves) {
      log_.write("save", t.seq, t.first_token, t.num_tokens, t.blocks.size(), t.hashes.size());
      for (std::size_t i = 0; i < t.blocks.size(); ++i) store_[t.hashes[i]] = copy_out(cache, t.blocks[i]);
    }
  }

  void on_evicted(std::span<const loom::sdk::EvictedBlock> blocks, const KvCacheView& cache, Stream) override {
    log_.write("on_evicted", blocks.size());
    for (const auto& b : blocks) store_[b.hash] = copy_out(cache, b.block);
  }

  void on_finished(loom::sdk::SeqId seq) override { log_.write("on_finished", seq); }

 private:
  std::size_t layer_bytes(const KvCacheView& cache) const {
    return cache.block_elements() * loom::sdk::dtype_size(cache.dtype);
  }
  // K then V of every layer, as one byte string.
  std::vector<char> copy_out(const KvCacheView& cache, loom::sdk::BlockId block) const {
    const std::size_t n = layer_bytes(cache);
    std::vector<char> bytes;
    bytes.reserve(2 * n * cache.layers.size());
    for (const auto& layer : cache.layers)
      for (const void* base : {layer.k, layer.v}) {
        const char* from = static_cast<const char*>(base) + block * n;
        bytes.insert(bytes.end(), from, from + n);
      }
    return bytes;
  }
  // Layer l of every pending block into the cache.
  void load_layer(std::size_t l) const {
    const std::size_t n = layer_bytes(cache_);
    for (const auto& [block, bytes] : pending_)
      for (std::size_t a = 0; a < 2; ++a) {
        char* to = static_cast<char*>(a == 0 ? cache_.layers[l].k : cache_.layers[l].v) + block * n;
        if (corrupt_)
          std::memset(to, 0, n);
        else
          std::memcpy(to, bytes->data() + (2 * l + a) * n, n);
      }
  }

  std::size_t block_size_;
  bool corrupt_;
  std::int64_t fail_layer_wait_;
  std::int64_t pending_asks_;
  std::map<std::vector<TokenId>, std::int64_t> asks_;  // times each prompt was asked about
  loom::hooks::CallLog log_;
  std::map<BlockHash, std::vector<char>> store_;
  KvCacheView cache_;  // the step's load: its blocks and their stored bytes
  std::vector<std::pair<loom::sdk::BlockId, const std::vector<char>*>> pending_;
};

}  // namespace

LOOM_PLUGIN(kv_connector, "recording", "1.0.0",
            "Test fixture: stores saved and evicted blocks by hash, loads them back, logs every call",
            RecordingConnector, kKeys)
