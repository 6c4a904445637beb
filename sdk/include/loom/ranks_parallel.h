// The common half of a `parallel` plugin: its ranks, their devices and the collectives, leaving
// only the split (layout) to the plugin. Ranks in this process exchange data through an
// InProcessGroup (CPU ranks as threads); the engine refuses several ranks on GPUs in this version.
//
// Keys every such plugin takes (kRanksKeys): `size`, the number of ranks, and `devices`, a comma-
// separated list of one device per rank ("cpu,cpu", "cuda:0,cuda:1"); empty means `size` devices
// of the engine's kind (cuda:0..size-1 on a GPU, CPU ranks on the CPU).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "loom/error.h"
#include "loom/in_process_group.h"
#include "loom/parallel.h"

namespace loom::sdk {

inline constexpr ConfigKeySpec kRanksKeys[] = {
    {"size", KeyType::integer, "2", "number of ranks the model is split over"},
    {"devices", KeyType::string, "",
     "one device per rank, comma-separated (\"cpu,cpu\", \"cuda:0,cuda:1\"); empty: size devices of [engine] "
     "device's kind"},
};

class RanksParallel : public Parallel {
 public:
  RanksParallel(const EngineInfo& info, const PluginConfig& config, const std::string& name)
      : devices_(devices_of(info, config, name)), group_(static_cast<std::uint32_t>(devices_.size())) {}

  std::uint32_t world_size() const override { return group_.size(); }
  Device device_of(std::uint32_t rank) const override { return devices_.at(rank); }
  void init_rank(std::uint32_t) override {}

  void all_reduce_sum(std::uint32_t rank, const TensorView& buffer, Stream) override {
    if (buffer.dtype != DType::f32) throw loom::Error("all_reduce_sum: CPU ranks add fp32 buffers only");
    group_.all_reduce_sum(rank, static_cast<float*>(buffer.data), static_cast<std::size_t>(buffer.numel()));
  }
  void send_next(std::uint32_t rank, const TensorView& buffer, Stream) override {
    group_.send(rank, rank + 1, buffer.data, bytes_of(buffer));
  }
  void recv_prev(std::uint32_t rank, const TensorView& buffer, Stream) override {
    group_.recv(rank, rank - 1, buffer.data, bytes_of(buffer));
  }
  void all_to_all(std::uint32_t rank, const TensorView& send, const TensorView& recv, Stream) override {
    const std::vector<std::uint64_t> chunk(world_size(), bytes_of(send) / world_size());
    group_.all_to_all_v(rank, send.data, chunk, recv.data, chunk);
  }
  void all_to_all_v(std::uint32_t rank, const TensorView& send, std::span<const std::uint64_t> send_rows,
                    const TensorView& recv, std::span<const std::uint64_t> recv_rows, Stream) override {
    const std::uint64_t send_row = row_bytes(send), recv_row = row_bytes(recv);
    std::vector<std::uint64_t> send_bytes, recv_bytes;
    for (std::uint64_t rows : send_rows) send_bytes.push_back(rows * send_row);
    for (std::uint64_t rows : recv_rows) recv_bytes.push_back(rows * recv_row);
    group_.all_to_all_v(rank, send.data, send_bytes, recv.data, recv_bytes);
  }
  void all_gather(std::uint32_t rank, const TensorView& send, const TensorView& recv, Stream) override {
    group_.all_gather(rank, send.data, bytes_of(send), recv.data);
  }
  void abort_collectives() override { group_.abort(); }
  void resume_collectives() override { group_.resume(); }

 protected:
  static std::size_t bytes_of(const TensorView& t) { return static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype); }
  static std::uint64_t row_bytes(const TensorView& t) {
    return t.shape[0] == 0 ? 0 : bytes_of(t) / static_cast<std::uint64_t>(t.shape[0]);
  }

 private:
  static Device parse(const std::string& text, const std::string& where) {
    if (text == "cpu") return Device{DeviceKind::cpu, 0};
    if (text == "cuda") return Device{DeviceKind::cuda, 0};
    if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.find_first_not_of("0123456789", 5) == std::string::npos)
      return Device{DeviceKind::cuda, std::stoi(text.substr(5))};
    throw ConfigError(where + ": \"" + text + "\" is not a device; write \"cpu\" or \"cuda:N\"");
  }

  static std::vector<Device> devices_of(const EngineInfo& info, const PluginConfig& config, const std::string& name) {
    const std::string where = "[parallel] plugin \"" + name + "\"";
    const std::int64_t size = config.integer("size");
    if (size < 1 || size > 64) throw ConfigError(where + ": size = " + std::to_string(size) + " must be 1 to 64");
    std::vector<Device> devices;
    const std::string list = config.string("devices");
    if (list.empty()) {
      const Device engine = parse(info.device, where + " ([engine] device)");
      for (std::int64_t r = 0; r < size; ++r)
        devices.push_back(engine.kind == DeviceKind::cpu ? engine : Device{DeviceKind::cuda, static_cast<int>(r)});
      return devices;
    }
    for (std::size_t at = 0; at <= list.size();) {
      const std::size_t comma = std::min(list.find(',', at), list.size());
      devices.push_back(parse(list.substr(at, comma - at), where + ": devices"));
      at = comma + 1;
    }
    if (devices.size() != static_cast<std::size_t>(size))
      throw ConfigError(where + ": devices lists " + std::to_string(devices.size()) +
                        " devices for size = " + std::to_string(size) + "; list one per rank or leave it empty");
    return devices;
  }

  std::vector<Device> devices_;
  InProcessGroup group_;
};

}  // namespace loom::sdk
