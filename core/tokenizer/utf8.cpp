#include "core/tokenizer/utf8.h"

namespace loom::utf8 {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// The length of the sequence a lead byte starts and the range its second byte must be in (the
// Unicode standard's table 3-7: this excludes overlong forms, surrogates and code points past
// U+10FFFF); length 0 for a byte that starts no sequence.
struct Lead {
  std::size_t length;
  unsigned char second_lo, second_hi;
};

Lead lead_of(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes from bytes[i] form a valid (prefix of a) sequence: the whole length when
// complete, fewer when it breaks off or the input ends, at least 1.
std::size_t valid_run(std::string_view bytes, std::size_t i, const Lead& lead) {
  std::size_t k = 1;
  for (; k < lead.length && i + k < bytes.size(); ++k) {
    const auto c = static_cast<unsigned char>(bytes[i + k]);
    const bool ok = k == 1 ? (c >= lead.second_lo && c <= lead.second_hi) : (c & 0xC0) == 0x80;
    if (!ok) break;
  }
  return k;
}

}  // namespace

std::string lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    const Lead lead = lead_of(static_cast<unsigned char>(bytes[i]));
    if (lead.length == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    const std::size_t run = valid_run(bytes, i, lead);
    if (run == lead.length) {
      out.append(bytes.substr(i, run));
    } else {
      out += kReplacement;  // one for the maximal invalid part
    }
    i += run;
  }
  return out;
}

bool is_valid(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size();) {
    const Lead lead = lead_of(static_cast<unsigned char>(bytes[i]));
    if (lead.length == 0 || valid_run(bytes, i, lead) != lead.length) return false;
    i += lead.length;
  }
  return true;
}

std::size_t settled_prefix(std::string_view bytes) {
  // Only a sequence starting within the last 3 bytes can still be incomplete.
  const std::size_t n = bytes.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    const std::size_t i = n - back;
    const Lead lead = lead_of(static_cast<unsigned char>(bytes[i]));
    if (lead.length == 0) continue;  // a continuation byte (or a byte that starts nothing)
    if (lead.length > back && valid_run(bytes, i, lead) == back) return i;
    return n;
  }
  return n;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

char32_t next(std::string_view bytes, std::size_t& i) {
  const auto b = static_cast<unsigned char>(bytes[i]);
  const std::size_t length = lead_of(b).length == 0 ? 1 : lead_of(b).length;
  char32_t cp = length == 1 ? b : length == 2 ? (b & 0x1F) : length == 3 ? (b & 0x0F) : (b & 0x07);
  for (std::size_t k = 1; k < length && i + k < bytes.size(); ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(bytes[i + k]) & 0x3F);
  }
  i += length;
  return cp;
}

}  // namespace loom::utf8
