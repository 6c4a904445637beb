// The main() of a fuzz target built without libFuzzer (g++, LOOM_FUZZ=OFF): runs the target once
// on every file named on the command line, or in a folder named there, so the normal test suite
// replays the seed corpus (ctest -R fuzz_corpus_replay). Exits 1, naming the file, when an
// exception escapes the target; a crash ends the process as it would under libFuzzer.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::vector<std::filesystem::path> inputs_of(const std::filesystem::path& arg) {
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(arg)) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(arg))
      if (entry.is_regular_file()) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(arg);
  }
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " FILE_OR_FOLDER...\n";
    return 2;
  }
  std::size_t count = 0;
  for (int i = 1; i < argc; ++i) {
    for (const auto& path : inputs_of(argv[i])) {
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        std::cerr << "cannot read " << path << "\n";
        return 2;
      }
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      // A copy of exactly the input's size, as libFuzzer passes it, so reads past the end show.
      const std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
      try {
        LLVMFuzzerTestOneInput(data.data(), data.size());
      } catch (const std::exception& e) {
        std::cerr << path.string() << ": an exception escaped the fuzz target: " << e.what() << "\n";
        return 1;
      } catch (...) {
        std::cerr << path.string() << ": something that is not a std::exception escaped the fuzz target\n";
        return 1;
      }
      ++count;
    }
  }
  std::cout << "ran " << count << " inputs\n";
  return 0;
}
