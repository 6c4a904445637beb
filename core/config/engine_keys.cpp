// The keys of the engine's own sections, with defaults and help: the single source for
// validation, `loom config --explain` and docs/configuration.md.
#include "core/config/config.h"

namespace loom {

namespace {

using sdk::ConfigKeySpec;
using sdk::KeyType;

const ConfigKeySpec kModelKeys[] = {
    {"path", KeyType::string, "", "Hugging Face model directory or llama2.c .bin file"},
    {"tokenizer", KeyType::string, "", "sentencepiece tokenizer.model or byte-level BPE tokenizer.json (default: <path>/tokenizer.model, else <path>/tokenizer.json)"},
    {"dtype", KeyType::string, "auto", "weights and activations: auto | fp32 | bf16 | fp16 (CPU computes in fp32)"},
};

const ConfigKeySpec kEngineKeys[] = {
    {"device", KeyType::string, "cpu", "cpu | cuda | cuda:N"},
    {"max_num_seqs", KeyType::integer, "64", "sequences processed in one step, at most"},
    {"max_num_batched_tokens", KeyType::integer, "2048", "tokens processed in one step, at most (prefill chunks + decodes)"},
    {"max_model_len", KeyType::integer, "0", "longest sequence (prompt + output); 0 = the model's maximum"},
    {"gpu_memory_utilization", KeyType::number, "0.9", "fraction of GPU memory Loom may use (weights + KV cache)"},
    {"seed", KeyType::integer, "0", "seed of the run; requests without their own seed derive theirs from it"},
    {"deterministic", KeyType::boolean, "false", "batch-invariant results (CPU: always; GPU: not available yet, refused)"},
    {"num_threads", KeyType::integer, "0", "CPU threads for the kernels; 0 = every core"},
    {"cuda_graphs", KeyType::boolean, "true", "GPU: capture decode steps in CUDA graphs"},
};

const ConfigKeySpec kSamplingKeys[] = {
    {"temperature", KeyType::number, "0.0", "0 = greedy"},
    {"top_p", KeyType::number, "1.0", "nucleus sampling: keep the smallest set of tokens with this total probability"},
    {"top_k", KeyType::integer, "0", "keep the k most likely tokens; 0 = all"},
    {"min_p", KeyType::number, "0.0", "drop tokens less likely than min_p times the most likely one"},
    {"repetition_penalty", KeyType::number, "1.0", "> 1 discourages tokens already present"},
    {"presence_penalty", KeyType::number, "0.0", "subtracted from the logit of tokens already generated"},
    {"frequency_penalty", KeyType::number, "0.0", "subtracted once per occurrence in the tokens generated"},
    {"min_tokens", KeyType::integer, "0", "tokens generated before EOS and stop tokens may end a request"},
    {"max_tokens", KeyType::integer, "128", "tokens to generate per request, at most"},
    {"ignore_eos", KeyType::boolean, "false", "keep generating past the end-of-sequence token"},
};

const ConfigKeySpec kKvEngineKeys[] = {
    {"block_size", KeyType::integer, "16", "tokens per KV block"},
    {"num_blocks", KeyType::integer, "0", "KV blocks in the pool; 0 = size from cache_memory or free memory"},
    {"cache_memory", KeyType::bytes, "0", "bytes for the KV pool when num_blocks = 0; 0 = automatic"},
    {"prefix_caching", KeyType::boolean, "true", "reuse KV of identical prompt prefixes across requests"},
};

const ConfigKeySpec kSpeculativeEngineKeys[] = {
    {"num_draft_tokens", KeyType::integer, "4", "draft tokens proposed per sequence and step"},
    {"adaptive", KeyType::boolean, "true",
     "lower the drafts of a sequence whose drafts fail, pausing at none; false: always num_draft_tokens (to measure "
     "verify steps)"},
};

const EngineSectionSpec kEngineSections[] = {
    {"model", kModelKeys},
    {"engine", kEngineKeys},
    {"sampling", kSamplingKeys},
};

const PluginSectionSpec kPluginSections[] = {
    {sdk::PluginKind::scheduler, "scheduler", "fcfs", {}},
    {sdk::PluginKind::kv_allocator, "kv", "paged", kKvEngineKeys},
    {sdk::PluginKind::evictor, "evictor", "lru", {}},
    {sdk::PluginKind::attention, "attention", "paged", {}},
    {sdk::PluginKind::parallel, "parallel", "single", {}},
    {sdk::PluginKind::kv_connector, "kv_connector", "", {}},
    {sdk::PluginKind::drafter, "speculative", "", kSpeculativeEngineKeys},
};

}  // namespace

std::span<const PluginSectionSpec> plugin_section_specs() { return kPluginSections; }
std::span<const EngineSectionSpec> engine_section_specs() { return kEngineSections; }

}  // namespace loom
