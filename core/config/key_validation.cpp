#include "core/config/key_validation.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <vector>

#include "core/common/suggest.h"
#include "core/config/byte_size.h"

namespace loom {

namespace {

using Value = sdk::PluginConfig::Value;
using sdk::KeyType;

// Converts `value` to the spec's type, or nullopt when it does not fit.
std::optional<Value> coerce(const Value& value, KeyType type) {
  switch (type) {
    case KeyType::integer:
      if (auto v = std::get_if<std::int64_t>(&value)) return *v;
      return std::nullopt;
    case KeyType::number:
      if (auto v = std::get_if<double>(&value)) return *v;
      if (auto v = std::get_if<std::int64_t>(&value)) return static_cast<double>(*v);
      return std::nullopt;
    case KeyType::boolean:
      if (auto v = std::get_if<bool>(&value)) return *v;
      return std::nullopt;
    case KeyType::string:
      if (auto v = std::get_if<std::string>(&value)) return *v;
      return std::nullopt;
    case KeyType::bytes:
      if (auto v = std::get_if<std::int64_t>(&value); v && *v >= 0) return *v;
      if (auto v = std::get_if<std::string>(&value)) {
        if (auto bytes = parse_byte_size(*v); bytes && *bytes <= INT64_MAX)
          return static_cast<std::int64_t>(*bytes);
      }
      return std::nullopt;
  }
  return std::nullopt;
}

std::string example_for(const sdk::ConfigKeySpec& spec) {
  std::string value = spec.default_value ? spec.default_value : "";
  if (spec.type == KeyType::string || (spec.type == KeyType::bytes && !value.empty() &&
                                       !std::all_of(value.begin(), value.end(), ::isdigit)))
    value = "\"" + value + "\"";
  return std::string(spec.name) + " = " + value;
}

}  // namespace

Value parse_default(const sdk::ConfigKeySpec& spec, std::string_view owner) {
  std::string_view text = spec.default_value ? spec.default_value : "";
  std::optional<Value> parsed;
  switch (spec.type) {
    case KeyType::integer: {
      std::int64_t v = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec == std::errc() && end == text.data() + text.size()) parsed = v;
      break;
    }
    case KeyType::number: {
      double v = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec == std::errc() && end == text.data() + text.size()) parsed = v;
      break;
    }
    case KeyType::boolean:
      if (text == "true" || text == "false") parsed = (text == "true");
      break;
    case KeyType::string:
      parsed = std::string(text);
      break;
    case KeyType::bytes:
      parsed = coerce(Value(std::string(text)), KeyType::bytes);
      break;
  }
  if (!parsed) {
    throw ConfigError(std::string(owner) + " declares key '" + spec.name + "' with default '" +
                      std::string(text) + "', which is not " + sdk::key_type_name(spec.type) +
                      "; fix the plugin's manifest");
  }
  return *parsed;
}

sdk::PluginConfig validate_section(const RawSection& section,
                                   std::span<const sdk::ConfigKeySpec> specs,
                                   std::string_view owner,
                                   std::span<const std::string_view> ignored) {
  std::vector<std::string> accepted;
  for (const auto& spec : specs) accepted.emplace_back(spec.name);

  for (const auto& [key, entry] : section.entries) {
    if (std::find(ignored.begin(), ignored.end(), key) != ignored.end()) continue;
    if (std::find(accepted.begin(), accepted.end(), key) == accepted.end()) {
      throw ConfigError(entry.origin + ": [" + section.name + "] unknown key '" + key + "' for " +
                        std::string(owner) + "." + did_you_mean(key, accepted) +
                        " Accepted keys: " + join_names(accepted) + ".");
    }
  }

  sdk::PluginConfig result(section.name);
  for (const auto& spec : specs) {
    auto it = section.entries.find(std::string_view(spec.name));
    if (it == section.entries.end()) {
      result.set(spec.name, parse_default(spec, owner), "default");
      continue;
    }
    auto value = coerce(it->second.value, spec.type);
    if (!value) {
      throw ConfigError(it->second.origin + ": [" + section.name + "] " + spec.name +
                        ": expected " + sdk::key_type_name(spec.type) + ", got " +
                        describe_value(it->second.value) + ". Example: " + example_for(spec));
    }
    result.set(spec.name, std::move(*value), it->second.origin);
  }
  return result;
}

}  // namespace loom
