// Extension point `parallel`: how the model is split over ranks and which collectives run where.
//
// A rank is one device working on a share of the model. The plugin says, for each rank, which
// layers it holds (pipeline parallelism), which slice of the attention heads and of the FFN
// (tensor parallelism) and which experts (expert parallelism); the model runner loads and runs
// exactly that share and calls the plugin's collectives at the points the layout implies:
// all_reduce after row-split projections, send/recv of activations between pipeline stages,
// all_to_all of tokens to experts' ranks, all_gather of a vocab-parallel lm head's logits.
//
// Life of a plugin: constructed once per engine; init_rank(r) once for each rank r, by that
// rank's thread, after the rank's share of the weights is loaded and before its first
// collective (the place to create NCCL communicators); then collectives, step after step.
//
// `single` is one rank holding everything, with collectives that do nothing.
//
// Threading: collectives are called by each rank's thread with that rank's buffers; a plugin
// that runs several ranks in one process must document how it synchronizes them.
// Errors: collectives throw loom::DeviceError when the transport fails.
#pragma once

#include <cstdint>
#include <span>

#include "loom/engine_info.h"
#include "loom/export.h"
#include "loom/plugin.h"
#include "loom/tensor.h"

namespace loom::sdk {

// The share of the model one rank holds. Ranges are half-open [begin, end).
struct RankLayout {
  std::uint32_t rank = 0;
  std::uint32_t first_layer = 0, end_layer = 0;      // pipeline stage
  std::uint32_t first_head = 0, end_head = 0;        // query heads (tensor parallel)
  std::uint32_t first_kv_head = 0, end_kv_head = 0;  // KV heads (replicated when fewer than ranks)
  // FFN columns (tensor parallel): part ffn_part of ffn_parts equal parts of every FFN's
  // intermediate width w — columns [w * part / parts, w * (part + 1) / parts) of the dense FFN, of
  // each expert held and of the shared expert — so one layout fits FFNs of any width.
  std::uint32_t ffn_part = 0, ffn_parts = 1;
  std::uint32_t first_expert = 0, end_expert = 0;    // experts held (expert parallel)
  std::uint32_t vocab_begin = 0, vocab_end = 0;      // embedding and lm-head rows
};

class LOOM_SDK_VISIBLE Parallel : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::parallel;

  // Number of ranks; fixed for the plugin's lifetime. O(1).
  virtual std::uint32_t world_size() const = 0;

  // The share rank `rank` holds of a model of this shape. Throws loom::ConfigError when the
  // model cannot be split this way (e.g. heads not divisible by the tensor-parallel size).
  virtual RankLayout layout(const ModelShape& model, std::uint32_t rank) const = 0;

  // Device of rank `rank`, e.g. cuda:rank.
  virtual Device device_of(std::uint32_t rank) const = 0;

  // Sets up rank `rank`'s side of the transport (communicators, streams, shared buffers). Ranks
  // of one process call it concurrently, each from its own thread; it returns once the rank can
  // take part in collectives. Throws loom::DeviceError when the transport cannot be set up.
  virtual void init_rank(std::uint32_t rank) = 0;

  // Sums `buffer` elementwise over all ranks of its tensor-parallel group, in place.
  virtual void all_reduce_sum(std::uint32_t rank, const TensorView& buffer, Stream stream) = 0;

  // Pipeline: passes activations to the next stage / receives them from the previous one.
  virtual void send_next(std::uint32_t rank, const TensorView& buffer, Stream stream) = 0;
  virtual void recv_prev(std::uint32_t rank, const TensorView& buffer, Stream stream) = 0;

  // Expert parallel: exchanges equal-sized chunks of `send` with every rank, into `recv`.
  virtual void all_to_all(std::uint32_t rank, const TensorView& send, const TensorView& recv,
                          Stream stream) = 0;

  // Expert parallel with uneven routing: rank `rank` sends send_rows[j] rows of `send` (rows
  // taken in rank order from the first) to rank j, and receives recv_rows[j] rows from rank j
  // into `recv`, in rank order. A row is send.shape[1..] elements; both spans have world_size()
  // entries, and recv_rows[j] on this rank equals send_rows[rank] on rank j (the runner knows
  // the counts from the routing, which every rank computes alike).
  virtual void all_to_all_v(std::uint32_t rank, const TensorView& send, std::span<const std::uint64_t> send_rows,
                            const TensorView& recv, std::span<const std::uint64_t> recv_rows, Stream stream) = 0;

  // Wakes every rank waiting in a collective of this plugin, which then throws loom::DeviceError,
  // as does every collective until resume_collectives(): the runner calls it when one rank's work
  // failed, so that the others do not wait for it forever, and resumes once every rank has
  // returned. Any thread.
  virtual void abort_collectives() {}
  virtual void resume_collectives() {}

  // Gathers every rank's `send` (the same shape on each) into `recv`, rank r's at rows
  // [r * send.shape[0], (r + 1) * send.shape[0]): the vocab-parallel lm head's logits. `send`
  // may be rank `rank`'s own slot of `recv` (in place).
  virtual void all_gather(std::uint32_t rank, const TensorView& send, const TensorView& recv, Stream stream) = 0;
};

template <>
struct InterfaceOf<PluginKind::parallel> {
  using type = Parallel;
};

}  // namespace loom::sdk
