// Fuzz target `safetensors`: the bytes of a .safetensors file, and the text of a sharded
// checkpoint's model.safetensors.index.json.
//
// Every input goes through both parsers (a binary file fails the index's JSON at once, and an
// index's text fails the file's header length): SafetensorsFile::parse, then every tensor it
// accepts is looked up by name and converted to fp32 in full, so a range that the header check
// let through past the end of the input shows as an AddressSanitizer report; and
// parse_safetensors_index.
// Expected: loom::Error (ModelError). Anything else escaping, or a sanitizer report, is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/io/safetensors.h"
#include "core/io/tensor_convert.h"
#include "core/io/tensor_store.h"
#include "loom/error.h"

namespace {

// Tensors are converted only up to this many elements in all, so a valid header naming a large
// (zero-filled) data section does not make one input slow.
constexpr std::size_t kMaxConvertedElements = 1 << 20;

void parse_file(std::span<const std::byte> bytes) {
  const auto file = loom::io::SafetensorsFile::parse(bytes, "fuzz.safetensors");
  std::size_t converted = 0;
  std::vector<float> values;
  for (const loom::io::TensorView& tensor : file.tensors()) {
    // Invariants open() promises: the name finds the tensor; its bytes lie inside the file.
    if (file.find(tensor.name) != &tensor) std::abort();
    if (tensor.byte_size != 0 &&
        (tensor.data < bytes.data() || tensor.data + tensor.byte_size > bytes.data() + bytes.size()))
      std::abort();
    const auto count = static_cast<std::size_t>(tensor.numel());
    if (converted + count > kMaxConvertedElements) continue;
    converted += count;
    values.resize(count);
    loom::io::copy_to_fp32(tensor, values);
  }
  (void)file.metadata().size();
}

void parse_index(std::string_view text) {
  // An accepted shard is a plain file name: never empty, never a path into another folder.
  for (const auto& [tensor, shard] : loom::io::parse_safetensors_index(text, "fuzz.index.json"))
    if (shard.empty() || shard.find('/') != std::string::npos) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    parse_file(std::span(reinterpret_cast<const std::byte*>(data), size));
  } catch (const loom::Error&) {
  }
  try {
    parse_index(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const loom::Error&) {
  }
  return 0;
}
