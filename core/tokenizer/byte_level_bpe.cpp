#include "core/tokenizer/byte_level_bpe.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/tokenizer/bpe_merges.h"
#include "core/tokenizer/split_pattern.h"
#include "core/tokenizer/utf8.h"
#include "loom/error.h"

namespace loom {

namespace {

using Json = nlohmann::json;

// The regex of the ByteLevel pre-tokenizer when it splits by itself (use_regex = true): GPT-2's.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// GPT-2's printable stand-ins for bytes: the printable Latin-1 bytes stand for themselves, the
// other 68 for U+0100 onwards in byte order. Vocabulary pieces are spelled in these characters.
struct ByteAlphabet {
  std::array<std::string, 256> char_of_byte;  // UTF-8 of each byte's stand-in
  std::unordered_map<char32_t, std::uint8_t> byte_of_char;

  ByteAlphabet() {
    char32_t next_free = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t cp = printable ? static_cast<char32_t>(b) : next_free++;
      utf8::append(char_of_byte[static_cast<std::size_t>(b)], cp);
      byte_of_char[cp] = static_cast<std::uint8_t>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

struct AddedToken {
  std::int32_t id;
  std::string content;
  bool special, lstrip, rstrip;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

struct ByteLevelBpe::Impl {
  std::filesystem::path path;
  std::optional<BpeMerges> merges;
  std::vector<std::string> piece_of_id;  // "" for an id nothing names
  std::vector<std::string> bytes_of_id;  // what each piece stands for, spelled out once at load
  std::vector<bool> special;
  std::vector<AddedToken> added;  // longest content first, for leftmost-longest matching
  bool nfc = false;
  // The pre-tokenizer: regex splits in order, then ByteLevel's own prefix space.
  std::vector<SplitPattern> splits;
  bool add_prefix_space = false;
  std::vector<std::int32_t> prefix_ids, suffix_ids;  // the post-processor's template around $A
  std::int32_t eos = -1;

  [[noreturn]] void fail(const std::string& why) const {
    throw ModelError("cannot load tokenizer '" + path.string() + "': " + why);
  }
  void read_model(const Json& model);
  void read_added_tokens(const Json& tokens);
  void read_normalizer(const Json& normalizer);
  void read_pre_tokenizer(const Json& pre);
  void read_post_processor(const Json& post);
  void read_decoder(const Json& decoder);
  void read_eos_from_config();
  void spell_out_bytes();

  void encode_words(std::string_view text, std::vector<std::int32_t>& out) const;
};

void ByteLevelBpe::Impl::read_model(const Json& model) {
  if (model.value("type", "") != "BPE") {
    fail("model.type is '" + model.value("type", std::string("(none)")) +
         "'; only byte-level BPE tokenizer.json files are read (sentencepiece models: give tokenizer.model)");
  }
  if (!model.value("dropout", Json()).is_null())
    fail("model.dropout is set: BPE dropout is for training, not inference");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model[key].is_null() && !model[key].get<std::string>().empty()) {
      fail(std::string("model.") + key + " is set: only byte-level BPE without word affixes is read");
    }
  }
  if (model.value("byte_fallback", false)) fail("model.byte_fallback is true: a byte-level BPE never needs it");
  std::unordered_map<std::string, std::int32_t> vocab;
  for (const auto& [piece, id] : model.at("vocab").items()) vocab.emplace(piece, id.get<std::int32_t>());
  std::vector<BpeMerges::Merge> merge_list;
  for (const Json& m : model.at("merges")) {
    if (m.is_array() && m.size() == 2) {
      merge_list.push_back({m[0].get<std::string>(), m[1].get<std::string>()});
    } else if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const std::size_t space = s.find(' ', 1);  // the first piece is never empty
      if (space == std::string::npos) fail("model.merges has '" + s + "', not two pieces split by a space");
      merge_list.push_back({s.substr(0, space), s.substr(space + 1)});
    } else {
      fail("model.merges holds " + m.dump() + ": each merge is \"a b\" or [\"a\", \"b\"]");
    }
  }
  std::int32_t top = -1;
  for (const auto& [piece, id] : vocab) {
    if (id < 0) fail("model.vocab gives '" + piece + "' the negative id " + std::to_string(id));
    top = std::max(top, id);
  }
  piece_of_id.resize(static_cast<std::size_t>(top + 1));
  for (const auto& [piece, id] : vocab) piece_of_id[static_cast<std::size_t>(id)] = piece;
  try {
    merges.emplace(std::move(vocab), merge_list, model.value("ignore_merges", false));
  } catch (const ModelError& e) {
    fail(std::string("model.merges: ") + e.what());
  }
}

void ByteLevelBpe::Impl::read_added_tokens(const Json& tokens) {
  for (const Json& t : tokens) {
    AddedToken token{t.at("id").get<std::int32_t>(), t.at("content").get<std::string>(), t.value("special", false),
                     t.value("lstrip", false), t.value("rstrip", false)};
    if (token.content.empty()) fail("added_tokens has an empty token (id " + std::to_string(token.id) + ")");
    if (token.id < 0) fail("added_tokens gives '" + token.content + "' a negative id");
    if (t.value("single_word", false)) fail("added token '" + token.content + "' has single_word, which is not read");
    if (static_cast<std::size_t>(token.id) >= piece_of_id.size())
      piece_of_id.resize(static_cast<std::size_t>(token.id) + 1);
    piece_of_id[static_cast<std::size_t>(token.id)] = token.content;
    added.push_back(std::move(token));
  }
  special.assign(piece_of_id.size(), false);
  for (const AddedToken& t : added) special[static_cast<std::size_t>(t.id)] = t.special;
  std::stable_sort(added.begin(), added.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
}

void ByteLevelBpe::Impl::read_normalizer(const Json& normalizer) {
  if (normalizer.is_null()) return;
  const std::string type = normalizer.value("type", "");
  if (type == "NFC") {
    nfc = true;
  } else if (type == "Sequence") {
    for (const Json& n : normalizer.at("normalizers")) read_normalizer(n);
  } else {
    fail("normalizer.type '" + type + "' is not read (NFC is)");
  }
}

void ByteLevelBpe::Impl::read_pre_tokenizer(const Json& pre) {
  if (pre.is_null()) fail("pre_tokenizer is null: a byte-level BPE file has a ByteLevel pre-tokenizer");
  const std::string type = pre.value("type", "");
  if (type == "Sequence") {
    for (const Json& p : pre.at("pretokenizers")) read_pre_tokenizer(p);
  } else if (type == "Split") {
    if (pre.value("behavior", "") != "Isolated" || pre.value("invert", false)) {
      fail("pre_tokenizer Split with behavior '" + pre.value("behavior", std::string()) + "' (invert " +
           (pre.value("invert", false) ? "true" : "false") + ") is not read; Isolated is");
    }
    const Json& pattern = pre.at("pattern");
    if (!pattern.contains("Regex")) fail("pre_tokenizer Split's pattern is not a Regex: " + pattern.dump());
    try {
      splits.emplace_back(pattern["Regex"].get<std::string>());
    } catch (const ModelError& e) {
      fail(e.what());
    }
  } else if (type == "ByteLevel") {
    add_prefix_space = pre.value("add_prefix_space", false);
    if (pre.value("use_regex", true)) splits.emplace_back(kGpt2Pattern);
  } else {
    fail("pre_tokenizer.type '" + type + "' is not read (ByteLevel, Split and Sequence are)");
  }
}

void ByteLevelBpe::Impl::read_post_processor(const Json& post) {
  if (post.is_null()) return;
  const std::string type = post.value("type", "");
  if (type == "Sequence") {
    for (const Json& p : post.at("processors")) read_post_processor(p);
  } else if (type == "TemplateProcessing") {
    const Json& names = post.at("special_tokens");
    bool after = false;
    for (const Json& item : post.at("single")) {
      if (item.contains("Sequence")) {
        after = true;
      } else if (item.contains("SpecialToken")) {
        const std::string name = item["SpecialToken"].at("id").get<std::string>();
        if (!names.contains(name)) fail("post_processor's template names '" + name + "', not in its special_tokens");
        for (const Json& id : names[name].at("ids"))
          (after ? suffix_ids : prefix_ids).push_back(id.get<std::int32_t>());
      }
    }
  } else if (type != "ByteLevel") {
    fail("post_processor.type '" + type + "' is not read (TemplateProcessing, ByteLevel and Sequence are)");
  }
}

void ByteLevelBpe::Impl::read_decoder(const Json& decoder) {
  const std::string type = decoder.is_null() ? std::string("null") : decoder.value("type", std::string("(none)"));
  if (type != "ByteLevel") fail("decoder.type is " + type + "; a byte-level BPE file decodes with ByteLevel");
}

void ByteLevelBpe::Impl::read_eos_from_config() {
  // tokenizer_config.json names the EOS token by its text ("<|eot_id|>" or {"content": ...}).
  const auto config_path = path.parent_path() / "tokenizer_config.json";
  std::ifstream in(config_path);
  if (!in) return;
  Json config;
  try {
    config = Json::parse(in);
  } catch (const Json::exception& e) {
    throw ModelError("cannot read '" + config_path.string() + "': " + e.what());
  }
  const Json eos_token = config.value("eos_token", Json());
  const std::string name = eos_token.is_string()   ? eos_token.get<std::string>()
                           : eos_token.is_object() ? eos_token.value("content", "")
                                                   : "";
  if (name.empty()) return;
  for (std::size_t id = 0; id < piece_of_id.size(); ++id) {
    if (piece_of_id[id] == name) eos = static_cast<std::int32_t>(id);
  }
  if (eos < 0) throw ModelError("'" + config_path.string() + "' names eos_token '" + name + "', which is no token");
}

void ByteLevelBpe::Impl::spell_out_bytes() {
  // As the ByteLevel decoder: each character back to its byte; a piece with a character outside
  // the alphabet (an added token such as "<|im start|>" with a space) stands for its own UTF-8.
  const auto& byte_of_char = byte_alphabet().byte_of_char;
  bytes_of_id.resize(piece_of_id.size());
  for (std::size_t id = 0; id < piece_of_id.size(); ++id) {
    const std::string& piece = piece_of_id[id];
    std::string& bytes = bytes_of_id[id];
    for (std::size_t i = 0; i < piece.size();) {
      const auto it = byte_of_char.find(utf8::next(piece, i));
      if (it == byte_of_char.end()) {
        bytes = piece;
        break;
      }
      bytes.push_back(static_cast<char>(it->second));
    }
  }
}

ByteLevelBpe ByteLevelBpe::load(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  std::ifstream in(path);
  if (!in) impl->fail("cannot open the file for reading");
  Json file;
  try {
    file = Json::parse(in);
  } catch (const Json::exception& e) {
    impl->fail(std::string("not valid JSON (") + e.what() + ")");
  }
  try {
    impl->read_model(file.at("model"));
    impl->read_added_tokens(file.value("added_tokens", Json::array()));
    impl->read_normalizer(file.value("normalizer", Json()));
    impl->read_pre_tokenizer(file.value("pre_tokenizer", Json()));
    impl->read_post_processor(file.value("post_processor", Json()));
    impl->read_decoder(file.value("decoder", Json()));
  } catch (const Json::exception& e) {
    impl->fail(std::string("unexpected content (") + e.what() + ")");
  }
  for (const auto* ids : {&impl->prefix_ids, &impl->suffix_ids}) {
    for (std::int32_t id : *ids) {
      if (id < 0 || static_cast<std::size_t>(id) >= impl->piece_of_id.size()) {
        impl->fail("post_processor adds id " + std::to_string(id) + ", outside the vocabulary");
      }
    }
  }
  impl->read_eos_from_config();
  impl->spell_out_bytes();
  return ByteLevelBpe(std::move(impl));
}

ByteLevelBpe::ByteLevelBpe(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ByteLevelBpe::ByteLevelBpe(ByteLevelBpe&&) noexcept = default;
ByteLevelBpe& ByteLevelBpe::operator=(ByteLevelBpe&&) noexcept = default;
ByteLevelBpe::~ByteLevelBpe() = default;

void ByteLevelBpe::Impl::encode_words(std::string_view text, std::vector<std::int32_t>& out) const {
  if (text.empty()) return;
  std::string normalized;
  if (nfc) {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* normalizer = icu::Normalizer2::getNFCInstance(status);
    icu::StringByteSink<std::string> sink(&normalized);
    if (U_SUCCESS(status))
      normalizer->normalizeUTF8(0, icu::StringPiece(text.data(), static_cast<int32_t>(text.size())), sink, nullptr,
                                status);
    if (U_FAILURE(status)) throw RequestError(std::string("cannot normalize the text (NFC): ") + u_errorName(status));
    text = normalized;
  }
  std::vector<std::string_view> words{text};
  for (const SplitPattern& split : splits) {
    std::vector<std::string_view> finer;
    for (std::string_view w : words) {
      for (std::string_view piece : split.split(w)) finer.push_back(piece);
    }
    words = std::move(finer);
  }
  const ByteAlphabet& alphabet = byte_alphabet();
  std::string spelled;
  for (std::string_view word : words) {
    spelled.clear();
    if (add_prefix_space && word.front() != ' ') spelled += alphabet.char_of_byte[' '];
    for (char c : word) spelled += alphabet.char_of_byte[static_cast<std::uint8_t>(c)];
    auto ids = merges->encode(spelled);
    if (!ids)
      throw RequestError("tokenizer '" + path.string() + "' has no piece for a byte of the word '" + std::string(word) +
                         "'");
    out.insert(out.end(), ids->begin(), ids->end());
  }
}

std::vector<std::int32_t> ByteLevelBpe::encode(std::string_view text, bool add_special) const {
  if (!utf8::is_valid(text)) {
    throw RequestError("the text is not valid UTF-8");
  }
  std::vector<std::int32_t> ids;
  if (add_special) ids = impl_->prefix_ids;
  // Cut out added tokens, leftmost first and the longest at a position (`added` is sorted so).
  std::size_t done = 0;
  while (done < text.size()) {
    std::size_t best_at = std::string_view::npos;
    const AddedToken* best = nullptr;
    for (const AddedToken& token : impl_->added) {
      const std::size_t at = text.find(token.content, done);
      if (at < best_at) {
        best_at = at;
        best = &token;
      }
    }
    if (!best) break;
    std::size_t words_end = best_at, after = best_at + best->content.size();
    if (best->lstrip) {
      while (words_end > done && is_space(text[words_end - 1])) --words_end;
    }
    if (best->rstrip) {
      while (after < text.size() && is_space(text[after])) ++after;
    }
    impl_->encode_words(text.substr(done, words_end - done), ids);
    ids.push_back(best->id);
    done = after;
  }
  impl_->encode_words(text.substr(done), ids);
  if (add_special) ids.insert(ids.end(), impl_->suffix_ids.begin(), impl_->suffix_ids.end());
  return ids;
}

std::string ByteLevelBpe::token_bytes(std::int32_t id) const {
  return impl_->bytes_of_id[static_cast<std::size_t>(id)];
}

std::string ByteLevelBpe::decode(std::span<const std::int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (std::int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    bytes += impl_->bytes_of_id[static_cast<std::size_t>(id)];
  }
  return utf8::lossy(bytes);
}

std::int32_t ByteLevelBpe::vocab_size() const { return static_cast<std::int32_t>(impl_->piece_of_id.size()); }
std::string_view ByteLevelBpe::piece(std::int32_t id) const { return impl_->piece_of_id[static_cast<std::size_t>(id)]; }
bool ByteLevelBpe::is_special(std::int32_t id) const { return impl_->special[static_cast<std::size_t>(id)]; }

std::optional<std::int32_t> ByteLevelBpe::added_token_id(std::string_view content) const {
  for (const AddedToken& t : impl_->added) {
    if (t.content == content) return t.id;
  }
  return std::nullopt;
}

std::int32_t ByteLevelBpe::bos_id() const { return impl_->prefix_ids.size() == 1 ? impl_->prefix_ids[0] : -1; }
std::int32_t ByteLevelBpe::eos_id() const { return impl_->eos; }

}  // namespace loom
