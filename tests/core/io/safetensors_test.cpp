#include "core/io/safetensors.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/io/safetensors_writer.h"
#include "core/io/tensor_convert.h"
#include "core/io/tensor_store.h"
#include "io_test_util.h"

namespace loom::io {
namespace {

using test::TempDir;
using test::write_raw_safetensors;

void write_two_tensors(const std::filesystem::path& path, DType dtype) {
  SafetensorsWriter w(path, {{"a", dtype, {2, 3}}, {"b", DType::f32, {4}}}, {{"format", "pt"}});
  w.write_fp32(std::vector<float>{1, 2, 3});  // pieces of any size within a tensor
  w.write_fp32(std::vector<float>{4, 5, -6});
  w.write_fp32(std::vector<float>{0.5f, 0.25f, -1, 1e-3f});
  w.finish();
}

TEST(IoSafetensors, WriterThenReaderRoundTrip) {
  TempDir dir;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    const auto path = dir / "t.safetensors";
    write_two_tensors(path, dtype);
    const SafetensorsFile file = SafetensorsFile::open(path);
    ASSERT_EQ(file.tensors().size(), 2u);
    EXPECT_EQ(file.metadata().at("format"), "pt");
    const TensorView* a = file.find("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->dtype, dtype);
    EXPECT_EQ(a->shape, (std::vector<std::int64_t>{2, 3}));
    EXPECT_EQ(a->byte_size, 6 * dtype_size(dtype));
    std::vector<float> values(6);
    copy_to_fp32(*a, values);
    EXPECT_EQ(values, (std::vector<float>{1, 2, 3, 4, 5, -6}));
    const TensorView* b = file.find("b");
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b->data) % 4, 0u) << "data section is 8-aligned";
    EXPECT_EQ(file.find("c"), nullptr);
    EXPECT_MODEL_ERROR(copy_to_fp32(*a, std::span<float>(values.data(), 5)), "tensor 'a'");
  }
}

TEST(IoSafetensors, ViewOutlivesFile) {
  TempDir dir;
  write_two_tensors(dir / "t.safetensors", DType::f32);
  TensorView b;
  {
    const SafetensorsFile file = SafetensorsFile::open(dir / "t.safetensors");
    b = *file.find("b");
  }
  std::vector<float> values(4);
  copy_to_fp32(b, values);
  EXPECT_EQ(values[1], 0.25f);
}

TEST(IoSafetensors, FileShorterThanHeaderLength) {
  TempDir dir;
  test::write_file(dir / "x.safetensors", "abc");
  EXPECT_MODEL_ERROR(SafetensorsFile::open(dir / "x.safetensors"), "shorter than the 8-byte header length");
}

TEST(IoSafetensors, HeaderLengthBeyondFile) {
  TempDir dir;
  write_raw_safetensors(dir / "x.safetensors", "{}", "", 1000);
  EXPECT_MODEL_ERROR(SafetensorsFile::open(dir / "x.safetensors"), "header length 1000 exceeds the file size 10");
}

TEST(IoSafetensors, HeaderNotJson) {
  TempDir dir;
  write_raw_safetensors(dir / "x.safetensors", "{\"a\": {\"dtype\": ", "");
  EXPECT_MODEL_ERROR(SafetensorsFile::open(dir / "x.safetensors"), "header is not valid JSON");
}

TEST(IoSafetensors, UnsupportedDtypeNamesTensorAndDtype) {
  TempDir dir;
  write_raw_safetensors(dir / "x.safetensors",
                        R"({"ids": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}})", std::string(16, '\0'));
  EXPECT_MODEL_ERROR(SafetensorsFile::open(dir / "x.safetensors"), "tensor 'ids': dtype I64 is not supported");
  write_raw_safetensors(dir / "y.safetensors",
                        R"({"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})", std::string(8, '\0'));
  EXPECT_MODEL_ERROR(SafetensorsFile::open(dir / "y.safetensors"), "dtype F64 is not supported; Loom reads F32, F16 and BF16");
}

TEST(IoSafetensors, DataBeyondFile) {
  TempDir dir;
  write_two_tensors(dir / "t.safetensors", DType::f32);
  const auto size = std::filesystem::file_size(dir / "t.safetensors");
  std::filesystem::resize_file(dir / "t.safetensors", size - 4);
  EXPECT_MODEL_ERROR(SafetensorsFile::open(dir / "t.safetensors"), "extend beyond the data section");
}

TEST(IoSafetensors, ShapeDisagreesWithByteRange) {
  TempDir dir;
  write_raw_safetensors(dir / "x.safetensors",
                        R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", std::string(24, '\0'));
  EXPECT_MODEL_ERROR(SafetensorsFile::open(dir / "x.safetensors"),
                     "shape [2, 3] of F32 needs 24 bytes but data_offsets [0, 20] hold 20");
}

TEST(IoSafetensors, OverlappingOffsets) {
  TempDir dir;
  write_raw_safetensors(dir / "x.safetensors",
                        R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})",
                        std::string(16, '\0'));
  EXPECT_MODEL_ERROR(SafetensorsFile::open(dir / "x.safetensors"), "have overlapping data_offsets");
}

TEST(IoSafetensors, MalformedEntries) {
  TempDir dir;
  const auto p = dir / "x.safetensors";
  write_raw_safetensors(p, R"([1, 2])", "");
  EXPECT_MODEL_ERROR(SafetensorsFile::open(p), "header is not a JSON object");
  write_raw_safetensors(p, R"({"a": {"dtype": "F32", "shape": [1]}})", "");
  EXPECT_MODEL_ERROR(SafetensorsFile::open(p), "tensor 'a': needs");
  write_raw_safetensors(p, R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "0000");
  EXPECT_MODEL_ERROR(SafetensorsFile::open(p), "not a non-negative integer");
  write_raw_safetensors(p, R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", "0000");
  EXPECT_MODEL_ERROR(SafetensorsFile::open(p), "end before they begin");
  write_raw_safetensors(p, R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})", "0000");
  EXPECT_MODEL_ERROR(SafetensorsFile::open(p), "is too large");
}

TEST(IoSafetensors, MissingFile) {
  TempDir dir;
  EXPECT_MODEL_ERROR(SafetensorsFile::open(dir / "nope.safetensors"), "nope.safetensors");
}

TEST(IoTensorStore, ShardedIndexErrors) {
  TempDir dir;
  write_two_tensors(dir / "part1.safetensors", DType::f32);
  test::write_file(dir / "model.safetensors.index.json",
                   R"({"weight_map": {"a": "part1.safetensors", "b": "part1.safetensors"}})");
  const TensorStore store = TensorStore::open_directory(dir.path());
  EXPECT_TRUE(store.contains("a"));
  EXPECT_EQ(store.get("b").shape, (std::vector<std::int64_t>{4}));
  EXPECT_MODEL_ERROR(store.get("zzz"), "tensor 'zzz' is missing");

  test::write_file(dir / "model.safetensors.index.json", R"({"weight_map": {"a": "part2.safetensors"}})");
  EXPECT_MODEL_ERROR(TensorStore::open_directory(dir.path()), "shard 'part2.safetensors'");
  test::write_file(dir / "model.safetensors.index.json", R"({"weight_map": {"c": "part1.safetensors"}})");
  EXPECT_MODEL_ERROR(TensorStore::open_directory(dir.path()), "does not contain it");
  test::write_file(dir / "model.safetensors.index.json", R"({"weight_map": {"a": "../part1.safetensors"}})");
  EXPECT_MODEL_ERROR(TensorStore::open_directory(dir.path()), "not a file name");
  test::write_file(dir / "model.safetensors.index.json", "{oops");
  EXPECT_MODEL_ERROR(TensorStore::open_directory(dir.path()), "is not valid JSON");
  std::filesystem::remove(dir / "model.safetensors.index.json");
  EXPECT_MODEL_ERROR(TensorStore::open_directory(dir.path()), "has neither model.safetensors");
}

// Found by the safetensors fuzz target: converting a zero-element tensor into an empty
// destination passed memcpy a null pointer (undefined even for 0 bytes; UBSan reports it).
TEST(IoSafetensors, ZeroElementTensorConvertsToNothing) {
  const std::string header = R"({"empty": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}})";
  const std::uint64_t len = header.size();
  const std::string file = std::string(reinterpret_cast<const char*>(&len), 8) + header;
  const SafetensorsFile parsed = SafetensorsFile::parse(std::as_bytes(std::span(file)), "empty.safetensors");
  ASSERT_EQ(parsed.tensors().size(), 1u);
  std::vector<float> none;
  copy_to_fp32(parsed.tensors()[0], none);
  convert_from_fp32(DType::bf16, none.data(), 0, nullptr);
}

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// Found while writing the safetensors fuzz target: a deeply nested value in a header or index
// overflowed the stack when an error message dumped it (nlohmann's dump() recurses).
TEST(IoSafetensors, DeepNestingIsRefusedNotACrash) {
  const std::string header = R"({"x": {"dtype": "F32", "shape": )" + nested(200'000) + R"(, "data_offsets": [0, 0]}})";
  const std::uint64_t len = header.size();
  const std::string file = std::string(reinterpret_cast<const char*>(&len), 8) + header;
  EXPECT_MODEL_ERROR(SafetensorsFile::parse(std::as_bytes(std::span(file)), "deep.safetensors"),
                     "header nests lists and objects deeper than 64 levels");
  EXPECT_MODEL_ERROR(parse_safetensors_index(R"({"weight_map": {"w": )" + nested(200'000) + "}}", "index.json"),
                     "safetensors index 'index.json': nests lists and objects deeper than 64 levels");
  // Real headers nest three levels; a few more are fine.
  EXPECT_MODEL_ERROR(parse_safetensors_index(R"({"weight_map": {"w": )" + nested(10) + "}}", "index.json"),
                     "weight_map entry for 'w' is not a string");
}

}  // namespace
}  // namespace loom::io
