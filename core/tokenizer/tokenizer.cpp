#include "core/tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include <fstream>
#include <iterator>
#include <system_error>

#include "core/tokenizer/byte_level_bpe.h"
#include "loom/error.h"

namespace loom {

struct Tokenizer::Impl {
  std::filesystem::path path;
  std::optional<ByteLevelBpe> bpe;  // a tokenizer.json; sentencepiece otherwise
  sentencepiece::SentencePieceProcessor processor;
  // byte_of[id] is the byte of a <0xHH> token, -1 for any other token.
  std::vector<std::int16_t> byte_of;
  std::vector<bool> control;
};

namespace {

[[noreturn]] void fail_load(const std::filesystem::path& path, const std::string& reason) {
  throw ModelError("cannot load tokenizer '" + path.string() + "': " + reason);
}

// "<0xE4>" -> 0xE4; sentencepiece spells every byte piece this way.
std::int16_t parse_byte_piece(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  int value = 0;
  for (char c : piece.substr(3, 2)) {
    int digit = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                         : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return static_cast<std::int16_t>(value);
}

}  // namespace

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail_load(path, "file does not exist");
  if (!std::filesystem::is_regular_file(path, ec)) fail_load(path, "not a regular file");
  if (path.extension() == ".json") {
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    impl->bpe.emplace(ByteLevelBpe::load(path));
    if (impl->bpe->vocab_size() <= 0) fail_load(path, "the vocabulary is empty");
    return Tokenizer(std::move(impl));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_load(path, "cannot open the file for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail_load(path, "read error");
  if (bytes.empty()) fail_load(path, "the file is empty");

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  // Parsing from memory keeps file-system errors ours and the message about the content theirs.
  const auto status = impl->processor.LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    fail_load(path, "not a valid sentencepiece model (" + status.ToString() + ")");
  }
  const int size = impl->processor.GetPieceSize();
  if (size <= 0) fail_load(path, "the vocabulary is empty");
  impl->byte_of.resize(static_cast<std::size_t>(size), -1);
  impl->control.resize(static_cast<std::size_t>(size), false);
  for (int id = 0; id < size; ++id) {
    if (impl->processor.IsByte(id)) {
      impl->byte_of[static_cast<std::size_t>(id)] = parse_byte_piece(impl->processor.IdToPiece(id));
    }
    impl->control[static_cast<std::size_t>(id)] = impl->processor.IsControl(id);
  }
  return Tokenizer(std::move(impl));
}

std::filesystem::path Tokenizer::find_beside(const std::filesystem::path& model_path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(model_path, ec)) return {};
  for (const char* name : {"tokenizer.model", "tokenizer.json"}) {
    if (std::filesystem::exists(model_path / name, ec)) return model_path / name;
  }
  return {};
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  if (impl_->bpe) return impl_->bpe->encode(text, add_bos);
  std::vector<int> ids;
  const auto status = impl_->processor.Encode(text, &ids);
  if (!status.ok()) throw RequestError("cannot tokenize the text: " + status.ToString());
  std::vector<std::int32_t> out;
  out.reserve(ids.size() + 1);
  if (add_bos && bos_id() >= 0) out.push_back(bos_id());
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids) const {
  for (std::int32_t id : ids) check_id(id);
  if (impl_->bpe) return impl_->bpe->decode(ids, /*skip_special=*/true);
  const std::vector<int> as_int(ids.begin(), ids.end());
  std::string text;
  const auto status = impl_->processor.Decode(as_int, &text);
  if (!status.ok()) throw RequestError("cannot decode token ids: " + status.ToString());
  return text;
}

bool Tokenizer::byte_level() const { return impl_->bpe.has_value(); }

std::string Tokenizer::token_bytes(std::int32_t id) const {
  check_id(id);
  if (impl_->bpe) return is_control(id) ? std::string(piece(id)) : impl_->bpe->token_bytes(id);
  if (auto byte = byte_value(id)) return std::string(1, static_cast<char>(*byte));
  const std::string_view piece_text = piece(id);
  const std::string_view space_marker = "\xe2\x96\x81";  // U+2581, sentencepiece's space
  std::string text;
  for (std::size_t i = 0; i < piece_text.size();) {
    if (piece_text.substr(i, space_marker.size()) == space_marker) {
      text.push_back(' ');
      i += space_marker.size();
    } else {
      text.push_back(piece_text[i++]);
    }
  }
  return text;
}

std::optional<std::int32_t> Tokenizer::token_id(std::string_view content) const {
  if (impl_->bpe) return impl_->bpe->added_token_id(content);
  const int id = impl_->processor.PieceToId(content);
  if (id < 0 || id >= vocab_size() || impl_->processor.IdToPiece(id) != content) return std::nullopt;
  return id;
}

std::int32_t Tokenizer::vocab_size() const {
  return impl_->bpe ? impl_->bpe->vocab_size() : impl_->processor.GetPieceSize();
}
std::int32_t Tokenizer::bos_id() const { return impl_->bpe ? impl_->bpe->bos_id() : impl_->processor.bos_id(); }
std::int32_t Tokenizer::eos_id() const { return impl_->bpe ? impl_->bpe->eos_id() : impl_->processor.eos_id(); }

std::string_view Tokenizer::piece(std::int32_t id) const {
  check_id(id);
  if (impl_->bpe) return impl_->bpe->piece(id);
  return impl_->processor.IdToPiece(id);
}

bool Tokenizer::is_control(std::int32_t id) const {
  check_id(id);
  if (impl_->bpe) return impl_->bpe->is_special(id);
  return impl_->control[static_cast<std::size_t>(id)];
}

std::optional<std::uint8_t> Tokenizer::byte_value(std::int32_t id) const {
  check_id(id);
  if (impl_->bpe) return std::nullopt;
  const std::int16_t b = impl_->byte_of[static_cast<std::size_t>(id)];
  if (b < 0) return std::nullopt;
  return static_cast<std::uint8_t>(b);
}

void Tokenizer::check_id(std::int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw RequestError("token id " + std::to_string(id) + " is out of range: the vocabulary of '" +
                       impl_->path.string() + "' has " + std::to_string(vocab_size()) +
                       " tokens (valid ids 0.." + std::to_string(vocab_size() - 1) + ")");
  }
}

const std::filesystem::path& Tokenizer::path() const { return impl_->path; }

std::string Tokenizer::mismatch(std::int64_t model_vocab) const {
  if (vocab_size() <= model_vocab) return "";
  return "has " + std::to_string(vocab_size()) + " pieces, more than the model's " + std::to_string(model_vocab) +
         "-token vocabulary: it belongs to another model. Give this model's tokenizer";
}

}  // namespace loom
