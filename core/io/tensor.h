// An immutable fp32 tensor on the host: a shape and a buffer shared by all copies.
//
// The buffer is either owned (a std::vector<float>, used when the file holds F16/BF16 or
// unaligned F32 data) or a view straight into a mapped F32 file, which then stays mapped as long
// as any copy of the tensor lives. Copies are cheap and share the data, so a tied lm_head is the
// embedding tensor itself. Code that needs to change weights (repacking, quantising) copies them
// out first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace loom::io {

class Tensor {
 public:
  Tensor() = default;
  // Takes ownership of `values`; values.size() must equal the shape's element count.
  static Tensor owned(std::vector<std::int64_t> shape, std::vector<float> values);
  // Views `data` (numel(shape) floats) that `owner` keeps alive.
  static Tensor view(std::vector<std::int64_t> shape, const float* data, std::shared_ptr<const void> owner);

  bool empty() const { return data_ == nullptr && shape_.empty(); }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  std::int64_t dim(std::size_t i) const { return shape_.at(i); }
  std::size_t numel() const { return numel_; }
  const float* data() const { return data_; }
  std::span<const float> values() const { return {data_, numel_}; }
  // True when the data is read in place from a mapped file rather than held in memory.
  bool is_view() const { return is_view_; }

 private:
  std::vector<std::int64_t> shape_;
  const float* data_ = nullptr;
  std::size_t numel_ = 0;
  bool is_view_ = false;
  std::shared_ptr<const void> owner_;
};

}  // namespace loom::io
