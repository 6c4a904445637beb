#include "disk_tier.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace loom::offload {

namespace {

constexpr char kMagic[8] = {'L', 'O', 'O', 'M', 'K', 'V', 'B', '1'};
constexpr const char* kSuffix = ".loomkv";

struct Header {
  char magic[8];
  std::uint64_t payload_bytes;
  std::uint64_t hash;
  std::uint64_t checksum;
};

}  // namespace

std::uint64_t DiskTier::files_for(std::size_t block_bytes, std::uint64_t capacity_bytes) {
  return capacity_bytes / (sizeof(Header) + block_bytes);
}

std::uint64_t checksum(std::span<const char> bytes) {
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ bytes.size();
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8);
    h = (h ^ word) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 29;
  }
  for (; i < bytes.size(); ++i) h = (h ^ static_cast<unsigned char>(bytes[i])) * 0x100000001B3ull;
  return h ^ (h >> 32);
}

DiskTier::DiskTier(std::filesystem::path folder, std::size_t block_bytes, std::uint64_t capacity_bytes,
                   std::shared_ptr<sdk::Evictor> order)
    : folder_(std::move(folder)),
      block_bytes_(block_bytes),
      file_bytes_(sizeof(Header) + block_bytes),
      order_(std::move(order), files_for(block_bytes, capacity_bytes)) {
  std::error_code ec;
  std::filesystem::create_directories(folder_, ec);
  if (ec || !std::filesystem::is_directory(folder_))
    throw std::runtime_error("cannot create the folder " + folder_.string() + (ec ? ": " + ec.message() : ""));
  for (const auto& entry : std::filesystem::directory_iterator(folder_, ec))
    if (entry.path().extension() == kSuffix) std::filesystem::remove(entry.path(), ec);
  const std::filesystem::path probe = folder_ / (std::string(".probe") + kSuffix);
  if (!std::ofstream(probe)) throw std::runtime_error("cannot write in " + folder_.string());
  std::filesystem::remove(probe, ec);
}

std::filesystem::path DiskTier::path_of(sdk::BlockHash hash) const {
  char name[32];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(hash));
  return folder_ / (std::string(name) + kSuffix);
}

void DiskTier::forget(sdk::BlockHash hash) {
  if (!order_.contains(hash)) return;
  order_.remove(hash);
  std::error_code ec;
  std::filesystem::remove(path_of(hash), ec);
}

bool DiskTier::write(sdk::BlockHash hash, std::span<const char> bytes) {
  if (order_.capacity() == 0 || bytes.size() != block_bytes_) return false;
  forget(hash);
  if (order_.size() == order_.capacity()) {
    std::error_code ec;
    std::filesystem::remove(path_of(order_.evict().hash), ec);
  }
  Header header{};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.payload_bytes = bytes.size();
  header.hash = hash;
  header.checksum = checksum(bytes);
  const std::filesystem::path path = path_of(hash);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&header), sizeof header);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {  // a full disk, a file-size limit: nothing half-written stays
      out.close();
      std::error_code ec;
      std::filesystem::remove(path, ec);
      return false;
    }
  }
  order_.add(hash);
  return true;
}

bool DiskTier::read(sdk::BlockHash hash, std::span<char> out) {
  if (!order_.contains(hash) || out.size() != block_bytes_) return false;
  std::ifstream in(path_of(hash), std::ios::binary);
  Header header{};
  in.read(reinterpret_cast<char*>(&header), sizeof header);
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  const bool whole = in && in.gcount() == static_cast<std::streamsize>(out.size()) && in.peek() == EOF;
  if (!whole || std::memcmp(header.magic, kMagic, sizeof kMagic) != 0 || header.payload_bytes != block_bytes_ ||
      header.hash != hash || header.checksum != checksum(out)) {
    forget(hash);
    return false;
  }
  order_.touch(hash);
  return true;
}

}  // namespace loom::offload
