#include "core/engine/engine.h"

#include <algorithm>

#include "core/config/byte_size.h"
#include "core/engine/engine_services.h"
#include "core/engine/prefix_cache_gate.h"
#include "core/model/config_adapters.h"
#include "core/model/cpu_model.h"
#include "core/model/cuda_model_factory.h"
#include "core/model/pipeline_model.h"
#include "core/model/sharded_model.h"
#include "core/plugin/plugin_setup.h"
#include "core/sampling/validate.h"
#include "core/tokenizer/bounded_encode.h"
#include "core/tokenizer/stop_strings.h"
#include "loom/host_memory.h"

namespace loom {

namespace {

constexpr std::uint64_t kDefaultCpuCacheBytes = 2ull << 30;  // when neither num_blocks nor cache_memory is set

// "cpu" -> -1; "cuda" -> 0; "cuda:N" -> N.
int cuda_device_index(const Config& config) {
  const std::string& device = config.engine.string("device");
  if (device == "cpu") return -1;
  if (device == "cuda") return 0;
  if (device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
      device.find_first_not_of("0123456789", 5) == std::string::npos && device.size() < 9)
    return std::stoi(device.substr(5));
  throw config.engine.invalid("device", "must be \"cpu\", \"cuda\" or \"cuda:N\" (N = the GPU's index)");
}

// Where the model will run and in which type, decided from the config and the model's config
// alone, so that plugins can be asked about them before any weight is converted or uploaded.
struct ModelPlan {
  sdk::Device device;
  sdk::DType kv_dtype = sdk::DType::f32;
  CudaModelOptions cuda;  // device.kind == cuda
};

ModelPlan plan_model(const Config& config, const io::ModelConfig& model, std::size_t max_model_len) {
  ModelPlan plan;
  const int cuda_index = cuda_device_index(config);
  if (cuda_index < 0) return plan;  // CpuModel: fp32, batch-invariant, always deterministic
  const std::string& dtype = config.model.string("dtype");
  if (config.engine.boolean("deterministic"))
    throw config.engine.invalid("deterministic",
                                "is not available on the GPU yet: GPU runs repeat exactly for the same requests and "
                                "config, but the kernels are not batch-invariant; use device = \"cpu\" for outputs "
                                "that do not depend on the batch, or set deterministic = false");
  if (dtype == "fp32")
    throw config.model.invalid("dtype",
                               "the CUDA backend computes in bf16 or fp16: set dtype = \"bf16\", \"fp16\" "
                               "or \"auto\"");
  check_cuda_device(cuda_index);  // a clear error before any plugin is asked about the device
  plan.device = {sdk::DeviceKind::cuda, cuda_index};
  CudaModelOptions& options = plan.cuda;
  options.device_index = cuda_index;
  options.fp16 = dtype == "fp16" || (dtype == "auto" && model.torch_dtype == "float16");
  options.max_num_batched_tokens = static_cast<std::uint32_t>(config.engine.integer("max_num_batched_tokens"));
  options.max_num_seqs = static_cast<std::uint32_t>(config.engine.integer("max_num_seqs"));
  options.max_model_len = static_cast<std::uint32_t>(max_model_len);
  options.cuda_graphs = config.engine.boolean("cuda_graphs");
  if (const PluginChoice* drafter = config.plugin(sdk::PluginKind::drafter))
    options.max_draft_tokens = static_cast<std::uint32_t>(drafter->engine_keys.integer("num_draft_tokens"));
  plan.kv_dtype = options.fp16 ? sdk::DType::f16 : sdk::DType::bf16;
  return plan;
}

std::unique_ptr<Model> make_model(const ModelPlan& plan, io::LoadedModel model, RunnerPlugins& runner) {
  sdk::Parallel& parallel = *runner.parallel;
  std::vector<std::shared_ptr<sdk::AttentionBackend>> attention;  // one per rank (CPU)
  for (auto& backend : runner.rank_attention) attention.emplace_back(std::move(backend));
  if (runner.ranks.sharded)
    return std::make_unique<ShardedModel>(std::move(model), parallel, runner.ranks.layouts, std::move(attention));
  if (runner.ranks.stages.size() > 1)
    return std::make_unique<PipelineModel>(std::move(model), parallel, runner.ranks.stages, std::move(attention));
  if (plan.device.kind == sdk::DeviceKind::cpu) return std::make_unique<CpuModel>(std::move(model));
  return make_cuda_model(std::move(model), plan.cuda);
}

// The memory a KV pool can take on the model's device: the host's available memory, or the GPU's
// after the weights and work buffers.
std::uint64_t memory_for_pool(const Model& model) {
  if (model.device().kind == sdk::DeviceKind::cpu) return sdk::available_host_memory();
  try {
    return model.kv_cache_budget(1.0);
  } catch (const DeviceError&) {
    return 0;
  }
}

// A pool size asked for by `key` is checked before anything is allocated (an allocation that
// fails later blames whichever plugin allocated first), saying how much it asks of what there is.
void check_pool_fits(const sdk::PluginConfig& kv, const char* key, std::uint64_t blocks, const sdk::EngineInfo& info,
                     const Model& model) {
  const std::uint64_t block_bytes = info.block_bytes();
  const std::uint64_t room = memory_for_pool(model);
  if (room == 0 || static_cast<unsigned __int128>(blocks) * block_bytes <= room) return;
  const auto asked = static_cast<unsigned __int128>(blocks) * block_bytes;
  const std::uint64_t shown = asked > UINT64_MAX ? UINT64_MAX : static_cast<std::uint64_t>(asked);
  throw kv.invalid(key, std::to_string(blocks) + " blocks of " + std::to_string(info.block_size) + " tokens (" +
                            format_byte_size(block_bytes) + " each) need " + format_byte_size(shown) + "; the " +
                            (model.device().kind == sdk::DeviceKind::cpu ? "machine has " : "GPU has ") +
                            format_byte_size(room) + " available for them, room for at most " +
                            std::to_string(room / block_bytes) + " blocks. Ask for less, or 0 for the default");
}

std::uint64_t pool_blocks(const Config& config, const sdk::EngineInfo& info, const Model& model,
                          std::size_t max_model_len) {
  const std::uint64_t block_bytes = info.block_bytes();
  if (std::int64_t blocks = config.kv().integer("num_blocks"); blocks > 0) {
    check_pool_fits(config.kv(), "num_blocks", static_cast<std::uint64_t>(blocks), info, model);
    return static_cast<std::uint64_t>(blocks);
  }
  if (std::int64_t bytes = config.kv().integer("cache_memory"); bytes > 0) {
    const std::uint64_t blocks = static_cast<std::uint64_t>(bytes) / block_bytes;
    if (blocks == 0)
      throw config.kv().invalid("cache_memory", "holds no KV block: one block needs " + format_byte_size(block_bytes));
    check_pool_fits(config.kv(), "cache_memory", blocks, info, model);
    return blocks;
  }
  if (model.device().kind == sdk::DeviceKind::cuda) {
    // What gpu_memory_utilization leaves after the weights and work buffers.
    const std::uint64_t blocks = model.kv_cache_budget(config.engine.number("gpu_memory_utilization")) / block_bytes;
    if (blocks == 0) throw config.engine.invalid("gpu_memory_utilization", "leaves no room for one KV block");
    return blocks;
  }
  // Enough for every sequence at full length, within 2 GiB and a quarter of the memory available
  // now (pages are touched only as blocks are written, but a pool beyond the memory would fail
  // under load rather than at start-up).
  const std::uint64_t per_seq = (max_model_len + info.block_size - 1) / info.block_size;
  const std::uint64_t available = sdk::available_host_memory();
  const std::uint64_t cap = available > 0 ? std::min(kDefaultCpuCacheBytes, available / 4) : kDefaultCpuCacheBytes;
  return std::max<std::uint64_t>(per_seq, std::min<std::uint64_t>(per_seq * info.max_num_seqs, cap / block_bytes));
}

}  // namespace

Engine::Engine(const Config& config, PluginRegistry& registry, io::LoadedModel model,
               std::optional<Tokenizer> tokenizer)
    : tokenizer_(std::move(tokenizer)) {
  // Prompts of ids the model does not have would fail every text request alone.
  if (const std::string why = tokenizer_ ? tokenizer_->mismatch(model.config.vocab_size) : ""; !why.empty())
    throw ModelError("the tokenizer " + why);
  max_model_len_ = static_cast<std::size_t>(model.config.context_length());
  if (std::int64_t limit = config.engine.integer("max_model_len"); limit > 0) {
    const auto& c = model.config;
    if (static_cast<std::size_t>(limit) > max_model_len_)
      throw config.engine.invalid("max_model_len",
                                  "is " + std::to_string(limit) + ", more than the model's context of " +
                                      std::to_string(max_model_len_) + " positions" +
                                      (c.context_length() < c.max_position_embeddings
                                           ? " (its sliding window; Loom has no sliding-window attention)"
                                           : "") +
                                      "; set at most that, or 0 for the model's whole context");
    max_model_len_ = static_cast<std::size_t>(limit);
  }
  // The attention backend is asked whether it runs here, and the parallel plugin which layers
  // each rank holds, before the weights are converted or uploaded; the other plugins need the
  // pool's size, known once the model is on its device.
  const ModelPlan plan = plan_model(config, model.config, max_model_len_);
  ResolvedPlugins resolved = resolve_plugins(config, registry);
  const auto kv_bytes = static_cast<std::uint32_t>(sdk::dtype_size(plan.kv_dtype));
  sdk::EngineInfo info = engine_info(config, plan.device, shape_of(model.config, kv_bytes));
  RunnerPlugins runner = make_runner_plugins(config, resolved, info, plan.device, plan.kv_dtype);
  model_ = make_model(plan, std::move(model), runner);
  const auto& c = model_->config();
  seed_ = static_cast<std::uint64_t>(config.engine.integer("seed"));
  budget_.max_num_seqs = static_cast<std::uint32_t>(config.engine.integer("max_num_seqs"));
  budget_.max_num_batched_tokens = static_cast<std::uint32_t>(config.engine.integer("max_num_batched_tokens"));
  for (std::int64_t id : c.eos_token_ids) eos_ids_.push_back(static_cast<std::int32_t>(id));
  if (eos_ids_.empty() && tokenizer_ && tokenizer_->eos_id() >= 0) eos_ids_.push_back(tokenizer_->eos_id());

  ServicesPlan services_plan;
  services_plan.base_dir = config.base_dir;
  services_plan.target = info;
  services_plan.max_model_len = max_model_len_;
  services_plan.device = plan.device;
  services_plan.cuda = plan.cuda;
  services_plan.gpu_memory_utilization = config.engine.number("gpu_memory_utilization");
  services_plan.attention = resolved.find(sdk::PluginKind::attention);
  services_plan.registry = &registry;
  EngineServiceProvider services(std::move(services_plan));
  PluginPtr<sdk::Drafter> drafter = make_drafter(resolved, info, services);  // before the pool: see make_drafter
  info.num_blocks = pool_blocks(config, info, *model_, max_model_len_);
  plugins_ = make_engine_plugins(config, resolved, info, std::move(runner), std::move(drafter), services);
  // The ranks' shares are loaded. A plugin's exception is copied into one of the engine's: the
  // plugin's library may be unloaded while this constructor unwinds, taking the original's code.
  if (std::string error = try_call("parallel.init_rank()", [&] { model_->init_ranks(*plugins_.parallel); });
      !error.empty())
    throw DeviceError(error);
  cache_ = model_->make_kv_cache(static_cast<std::uint32_t>(info.num_blocks), info.block_size);
  scheduler_allocator_ = std::make_unique<PrefixCacheGate>(*plugins_.allocator, [this](sdk::SeqId id) {
    auto it = sequences_.find(id);
    return it != sequences_.end() && it->second.needs_prompt_logprobs();
  });
  // Verify steps of a few sequences come in padded sizes of up to 16 tokens (1 + k each): their
  // graphs are captured now, not inside the first steps that draft (tens of ms each on a GPU).
  if (plugins_.drafter)
    for (int size : {1, 2, 4, 8, 16}) model_->prepare_step(size, *plugins_.attention, cache_->view());
  stats_.num_blocks = info.num_blocks;
  stats_.block_size = info.block_size;
  pin_prefix(config.kv().boolean("prefix_caching"));
}

Engine::~Engine() = default;

double Engine::now_s() const {
  if (clock_) return clock_();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Engine::fail(const Request& request, std::int32_t index, std::int32_t n, std::size_t prompt_tokens,
                  const std::string& message) {
  RequestResult result;
  result.id = request.id;
  result.index = index;
  result.n = n;
  result.finish_reason = "error";
  result.error = message;
  result.prompt_tokens = prompt_tokens;
  result.arrival_s = result.finish_s = now_s();
  finished_.push_back(std::move(result));
  ++stats_.rejected;
}

void Engine::submit(const Request& request) {
  const std::uint64_t request_index = next_request_index_++;
  // One error line for an n out of range, not one per sample asked for.
  const std::int32_t n = num_results(request.params);
  std::vector<std::int32_t> prompt;
  try {
    // The prompt first, so that an error line still says how long the prompt was.
    if (request.prompt) {
      if (!tokenizer_)
        throw RequestError("the model has no tokenizer: give prompt_token_ids, or set [model] tokenizer");
      auto encoded = encode_bounded(*tokenizer_, *request.prompt, /*add_bos=*/true, max_model_len_ - 1);
      if (const auto* too_long = std::get_if<TooManyTokens>(&encoded))
        throw RequestError("the prompt is longer than the model's context of " + std::to_string(max_model_len_) +
                           " tokens (prompt and output together): its first " + std::to_string(too_long->prefix_bytes) +
                           " of " + std::to_string(request.prompt->size()) + " bytes are already " +
                           std::to_string(too_long->prefix_tokens) + " tokens");
      prompt = std::move(std::get<std::vector<std::int32_t>>(encoded));
    } else {
      prompt = request.prompt_token_ids;
    }
    validate(request.params);
    if (prompt.empty()) throw RequestError("the prompt is empty");
    const auto vocab = static_cast<std::int32_t>(model_->config().vocab_size);
    for (std::int32_t id : prompt)
      if (id < 0 || id >= vocab)
        throw RequestError("prompt token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                           std::to_string(vocab) + ")");
    if (prompt.size() >= max_model_len_) {
      const auto& c = model_->config();
      const bool window = static_cast<std::size_t>(c.context_length()) == max_model_len_ &&
                          c.context_length() < c.max_position_embeddings;
      throw RequestError(
          "the prompt has " + std::to_string(prompt.size()) + " tokens; the model's context is " +
          std::to_string(max_model_len_) + " (prompt and output together)" +
          (window ? "; it is the checkpoint's sliding window, and Loom has no sliding-window attention" : ""));
    }
  } catch (const RequestError& e) {
    for (std::int32_t i = 0; i < n; ++i) fail(request, i, n, prompt.size(), e.what());
    return;
  }

  for (std::int32_t i = 0; i < n; ++i) {
    Sequence seq;
    seq.id = next_id_++;
    seq.request_id = request.id;
    seq.sample_index = i;
    seq.num_samples = n;
    seq.tokens = prompt;
    seq.num_prompt_tokens = prompt.size();
    seq.max_total_tokens =
        std::min(max_model_len_, prompt.size() + static_cast<std::size_t>(request.params.max_tokens));
    seq.arrival_step = tick_;
    seq.params = request.params;
    // Each sample has its own stream: reproducible whatever else runs alongside.
    const std::uint64_t base = request.params.seed ? *request.params.seed : derive_seed(seed_, request_index);
    seq.rng = SequenceRng(derive_seed(base, static_cast<std::uint64_t>(i)));
    if (tokenizer_) seq.decoder = std::make_unique<StreamingDecoder>(*tokenizer_, seq.prompt());
    seq.arrival_s = now_s();
    if (request.params.max_tokens == 0 && request.params.prompt_logprobs < 0) {
      std::vector<RequestResult> done;
      finish(seq, "length", done);
      finished_.insert(finished_.end(), done.begin(), done.end());
      continue;
    }
    // Samples after the first wait inside it and fork from it once its prompt is computed
    // (engine_step.cpp, fork_samples), so the prompt's KV is computed once for all n.
    if (i == 0)
      sequences_.emplace(seq.id, std::move(seq));
    else
      sequences_.at(seq.id - i).unforked_samples.push_back(std::move(seq));
  }
}

void Engine::finish_unforked_samples(Sequence& parent, std::vector<RequestResult>& out) {
  if (parent.unforked_samples.empty()) return;
  const RequestResult& ended = out.back();  // the parent's, just finished with the reason to share
  const std::string reason = ended.finish_reason, error = ended.error;
  for (Sequence& sample : parent.unforked_samples) {
    finish(sample, reason, out);
    out.back().error = error;
    if (reason == "error") ++stats_.rejected;
  }
  parent.unforked_samples.clear();
}

std::string Engine::append_token(Sequence& seq, std::int32_t token) {
  seq.tokens.push_back(token);
  if (seq.first_token_s < 0) seq.first_token_s = now_s();
  ++stats_.generated_tokens;
  const SamplingParams& p = seq.params;
  const bool may_stop = seq.num_output_tokens() > static_cast<std::size_t>(std::max(0, p.min_tokens));
  const bool is_eos = std::find(eos_ids_.begin(), eos_ids_.end(), token) != eos_ids_.end();
  if (may_stop && is_eos && !p.ignore_eos) return "stop";
  if (seq.decoder && !(is_eos && !p.ignore_eos)) seq.text += seq.decoder->push(token);
  if (may_stop && std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), token) != p.stop_token_ids.end())
    return "stop";
  if (may_stop && !p.stop.empty()) {
    // Only the new bytes, and as many before them as could begin a stop string, are searched.
    std::size_t longest = 0;
    for (const std::string& stop : p.stop) longest = std::max(longest, stop.size());
    const std::size_t from = seq.stop_searched_bytes > longest ? seq.stop_searched_bytes - (longest - 1) : 0;
    StopMatch match = find_stop(seq.text, p.stop, from);
    if (match.found) {
      seq.text.resize(match.position);
      return "stop";
    }
    seq.stop_searched_bytes = seq.text.size();
    seq.stop_hold_back = match.hold_back;
  }
  if (seq.tokens.size() >= seq.max_total_tokens) return "length";
  return "";
}

void Engine::finish(Sequence& seq, const std::string& reason, std::vector<RequestResult>& out) {
  if (seq.decoder && reason != "stop") seq.text += seq.decoder->finish();
  RequestResult result;
  result.id = seq.request_id;
  result.index = seq.sample_index;
  result.n = seq.num_samples;
  result.text = std::move(seq.text);
  result.token_ids.assign(seq.output().begin(), seq.output().end());
  result.finish_reason = reason;
  result.prompt_tokens = seq.num_prompt_tokens;
  if (seq.params.logprobs >= 0) result.logprobs = std::move(seq.logprobs);
  if (seq.params.prompt_logprobs >= 0) result.prompt_logprobs = std::move(seq.prompt_logprobs);
  result.arrival_s = seq.arrival_s;
  result.first_token_s = seq.first_token_s;
  result.finish_s = now_s();
  stats_.prompt_tokens += seq.num_prompt_tokens;
  out.push_back(std::move(result));
}

EngineStats Engine::stats() const {
  EngineStats s = stats_;
  s.kv = plugins_.allocator->stats();
  if (plugins_.connector) s.connector_counts = plugins_.connector->counts();
  return s;
}

}  // namespace loom
