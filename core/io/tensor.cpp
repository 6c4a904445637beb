#include "core/io/tensor.h"

#include <stdexcept>

#include "core/io/dtype.h"

namespace loom::io {

Tensor Tensor::owned(std::vector<std::int64_t> shape, std::vector<float> values) {
  const auto n = shape_numel(shape);
  if (!n || static_cast<std::size_t>(*n) != values.size())
    throw std::invalid_argument("Tensor::owned: shape " + shape_to_string(shape) + " does not hold " +
                                std::to_string(values.size()) + " values");
  auto storage = std::make_shared<const std::vector<float>>(std::move(values));
  Tensor t;
  t.shape_ = std::move(shape);
  t.numel_ = storage->size();
  t.data_ = storage->data();
  t.owner_ = std::move(storage);
  return t;
}

Tensor Tensor::view(std::vector<std::int64_t> shape, const float* data, std::shared_ptr<const void> owner) {
  const auto n = shape_numel(shape);
  if (!n) throw std::invalid_argument("Tensor::view: invalid shape " + shape_to_string(shape));
  Tensor t;
  t.shape_ = std::move(shape);
  t.numel_ = static_cast<std::size_t>(*n);
  t.data_ = data;
  t.is_view_ = true;
  t.owner_ = std::move(owner);
  return t;
}

}  // namespace loom::io
