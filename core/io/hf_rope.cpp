#include "core/io/hf_rope.h"

#include <cmath>
#include <cstdint>
#include <set>

#include "loom/error.h"

namespace loom::io {
namespace {

using nlohmann::json;

// Every key transformers reads from a RoPE dict of the supported rope_types; anything else in
// one is refused, since it may change the frequencies.
const std::set<std::string>& known_keys() {
  static const std::set<std::string> keys = {"rope_type",
                                             "type",
                                             "rope_theta",
                                             "factor",
                                             "original_max_position_embeddings",
                                             "low_freq_factor",
                                             "high_freq_factor",
                                             "beta_fast",
                                             "beta_slow",
                                             "attention_factor",
                                             "mscale",
                                             "mscale_all_dim",
                                             "truncate",
                                             "partial_rotary_factor"};
  return keys;
}

class RopeReader {
 public:
  explicit RopeReader(const std::string& source) : source_(source) {}

  [[noreturn]] void fail(const std::string& what) const { throw ModelError("model config '" + source_ + "': " + what); }

  // The object at `key` of the config, or null when absent or null.
  const json* object(const json& config, const char* key) const {
    if (!config.contains(key) || config.at(key).is_null()) return nullptr;
    // Built by appending: gcc 12's -Wrestrict misfires on '"\"" + std::string(key)'.
    if (!config.at(key).is_object())
      fail(std::string("\"").append(key).append("\" must be an object or null, found ").append(brief(config.at(key))));
    return &config.at(key);
  }

  // The rope_type a RoPE dict names ("rope_type", or the older "type"), "default" when none.
  std::string type_of(const json& dict, const char* where) const {
    std::string type;
    for (const char* key : {"rope_type", "type"}) {
      if (!dict.contains(key) || dict.at(key).is_null()) continue;
      if (!dict.at(key).is_string()) fail(std::string(where) + " \"" + key + "\" must be a string");
      const std::string named = dict.at(key).get<std::string>();
      if (!type.empty() && named != type)
        fail(std::string(where) + " names two rope types, \"" + type + "\" and \"" + named + "\"");
      type = named;
    }
    return type.empty() ? "default" : type;
  }

  // Merges transformers-4's rope_scaling and rope_theta into the rope_parameters dict; a key the
  // two layouts both give must have the same value in each.
  json merge(const json* parameters, const json* scaling, const json& config) const {
    json merged = parameters ? *parameters : json::object();
    for (const auto& [key, value] : merged.items())
      if (value.is_object())
        fail("\"rope_parameters\" holds per-layer-type settings (\"" + key +
             "\"); Loom uses one RoPE rule for every layer and does not support them");
    const std::string type = type_of(merged, "rope_parameters");
    merged.erase("type");
    merged["rope_type"] = type;
    if (scaling) {
      const std::string scaling_type = type_of(*scaling, "rope_scaling");
      if (parameters && scaling_type != type)
        fail("\"rope_scaling\" says rope type \"" + scaling_type + "\" but \"rope_parameters\" says \"" + type +
             "\"; remove one of them");
      merged["rope_type"] = scaling_type;
      for (const auto& [key, value] : scaling->items()) {
        if (key == "type" || key == "rope_type") continue;
        agree(merged, key, value, "rope_scaling");
        merged[key] = value;
      }
    }
    if (config.contains("rope_theta") && !config.at("rope_theta").is_null()) {
      agree(merged, "rope_theta", config.at("rope_theta"), "rope_theta");
      merged["rope_theta"] = config.at("rope_theta");
    }
    return merged;
  }

  double number(const json& dict, const char* key, double fallback) const {
    if (!dict.contains(key) || dict.at(key).is_null()) return fallback;
    const json& v = dict.at(key);
    if (!v.is_number()) fail(std::string("RoPE \"") + key + "\" must be a number, found " + brief(v));
    return v.get<double>();
  }
  double required(const json& dict, const char* key, const std::string& type) const {
    if (!dict.contains(key) || dict.at(key).is_null())
      fail("rope_type \"" + type + "\" needs \"" + key + "\" in \"rope_parameters\" (or \"rope_scaling\")");
    return number(dict, key, 0.0);
  }
  std::int64_t whole(const json& dict, const char* key, std::int64_t fallback) const {
    if (!dict.contains(key) || dict.at(key).is_null()) return fallback;
    const double v = number(dict, key, 0.0);
    if (!(v >= 1 && v <= INT32_MAX && v == std::floor(v)))
      fail(std::string("RoPE \"") + key + "\" must be a whole number from 1 to " + std::to_string(INT32_MAX) +
           ", found " + brief(dict.at(key)));
    return static_cast<std::int64_t>(v);
  }

  static std::string brief(const json& v) {
    std::string s = v.is_structured() ? (v.is_object() ? "an object" : "a list") : v.dump();
    return s.size() > 60 ? s.substr(0, 60) + "..." : s;
  }

 private:
  void agree(const json& merged, const std::string& key, const json& value, const char* from) const {
    if (!merged.contains(key) || merged.at(key).is_null()) return;
    const json& other = merged.at(key);
    const bool same =
        other.is_number() && value.is_number() ? other.get<double>() == value.get<double>() : other == value;
    if (!same)
      fail("\"" + std::string(from) + "\" gives " + key + " = " + brief(value) + " but \"rope_parameters\" gives " +
           brief(other) + "; remove one of them or make them agree");
  }

  const std::string& source_;
};

// transformers' get_mscale: the YaRN attention temperature for a context stretched by `scale`.
double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

}  // namespace

HfRope read_hf_rope(const json& config, double default_theta, std::int64_t max_position_embeddings,
                    const std::string& source) {
  const RopeReader r(source);
  const json rope = r.merge(r.object(config, "rope_parameters"), r.object(config, "rope_scaling"), config);
  for (const auto& [key, value] : rope.items())
    if (!known_keys().contains(key))
      r.fail("RoPE setting \"" + key + "\" (= " + RopeReader::brief(value) +
             ") is not understood by Loom, which implements rope types default, linear, dynamic, llama3 and yarn");
  for (const json* dict : {&config, &rope}) {
    const double partial = r.number(*dict, "partial_rotary_factor", 1.0);
    if (partial != 1.0)
      r.fail("\"partial_rotary_factor\" = " + RopeReader::brief(dict->at("partial_rotary_factor")) +
             " is not supported: Loom rotates every dimension of a head");
  }

  HfRope out;
  out.theta = r.number(rope, "rope_theta", default_theta);
  const std::string type = rope.at("rope_type").get<std::string>();
  RopeScaling& s = out.scaling;
  // transformers takes a top-level original_max_position_embeddings first, then the dict's,
  // then max_position_embeddings.
  const std::int64_t original = r.whole(config, "original_max_position_embeddings",
                                        r.whole(rope, "original_max_position_embeddings", max_position_embeddings));
  if (type == "default") return out;
  if (type == "linear" || type == "dynamic") {
    s.type = type == "linear" ? RopeScalingType::kLinear : RopeScalingType::kDynamic;
    s.factor = r.required(rope, "factor", type);
  } else if (type == "llama3") {
    s.type = RopeScalingType::kLlama3;
    s.factor = r.required(rope, "factor", type);
    s.low_freq_factor = r.required(rope, "low_freq_factor", type);
    s.high_freq_factor = r.required(rope, "high_freq_factor", type);
    s.original_max_position_embeddings = original;
    if (!(s.high_freq_factor > s.low_freq_factor))
      r.fail("llama3 RoPE needs high_freq_factor > low_freq_factor, found " + std::to_string(s.high_freq_factor) +
             " and " + std::to_string(s.low_freq_factor));
  } else if (type == "yarn") {
    s.type = RopeScalingType::kYarn;
    s.original_max_position_embeddings = original;
    s.factor = r.number(rope, "factor", static_cast<double>(max_position_embeddings) / static_cast<double>(original));
    s.beta_fast = r.number(rope, "beta_fast", 32.0);
    s.beta_slow = r.number(rope, "beta_slow", 1.0);
    if (rope.contains("truncate") && !rope.at("truncate").is_null()) {
      if (!rope.at("truncate").is_boolean()) r.fail("RoPE \"truncate\" must be true or false");
      s.truncate = rope.at("truncate").get<bool>();
    }
    const double mscale = r.number(rope, "mscale", 0.0);
    const double mscale_all_dim = r.number(rope, "mscale_all_dim", 0.0);
    s.attention_factor = r.number(rope, "attention_factor",
                                  mscale != 0 && mscale_all_dim != 0
                                      ? yarn_mscale(s.factor, mscale) / yarn_mscale(s.factor, mscale_all_dim)
                                      : yarn_mscale(s.factor, 1.0));
    if (!(s.beta_fast > 0 && s.beta_slow > 0)) r.fail("yarn RoPE needs positive beta_fast and beta_slow");
  } else {
    r.fail("rope_type \"" + type +
           "\" is not supported; Loom implements rope types default, linear, dynamic, llama3 and yarn");
  }
  if (!(s.factor > 0)) r.fail("RoPE \"factor\" must be positive, found " + std::to_string(s.factor));
  return out;
}

json hf_rope_parameters(double theta, const RopeScaling& s) {
  json j = {{"rope_theta", theta}};
  switch (s.type) {
    case RopeScalingType::kNone:
      j["rope_type"] = "default";
      break;
    case RopeScalingType::kLinear:
      j.update({{"rope_type", "linear"}, {"factor", s.factor}});
      break;
    case RopeScalingType::kDynamic:
      j.update({{"rope_type", "dynamic"}, {"factor", s.factor}});
      break;
    case RopeScalingType::kLlama3:
      j.update({{"rope_type", "llama3"},
                {"factor", s.factor},
                {"low_freq_factor", s.low_freq_factor},
                {"high_freq_factor", s.high_freq_factor},
                {"original_max_position_embeddings", s.original_max_position_embeddings}});
      break;
    case RopeScalingType::kYarn:
      j.update({{"rope_type", "yarn"},
                {"factor", s.factor},
                {"original_max_position_embeddings", s.original_max_position_embeddings},
                {"beta_fast", s.beta_fast},
                {"beta_slow", s.beta_slow},
                {"truncate", s.truncate},
                {"attention_factor", s.attention_factor}});
      break;
  }
  return j;
}

}  // namespace loom::io
