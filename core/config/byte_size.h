// Sizes with units, as config files write them: 4096, "512MiB", "16GiB", "2GB".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace loom {

// Parses a byte count: a plain integer, or a number followed by B, KB, MB, GB, TB (powers of
// 1000) or KiB, MiB, GiB, TiB (powers of 1024), case-insensitive, optional space. Fractions are
// allowed with a unit ("1.5GiB"). Returns nullopt for anything else, negative values included.
std::optional<std::uint64_t> parse_byte_size(std::string_view text);

// The accepted forms, for error messages.
inline constexpr const char* kByteSizeForms = "an integer byte count or a size such as \"512MiB\", \"16GiB\", \"2GB\"";

// 1536 -> "1.5 KiB"; for messages and reports.
std::string format_byte_size(std::uint64_t bytes);

}  // namespace loom
