# LOOM_FUZZ=ON builds the libFuzzer targets of tests/fuzz (docs/fuzzing.md) instead of the
# engine: every target of such a build is compiled with libFuzzer's coverage instrumentation,
# AddressSanitizer and UndefinedBehaviorSanitizer (any UB report is fatal), CPU-only. Use a build
# folder of its own; tools/fuzz.sh sets one up in build-fuzz/.
if(NOT LOOM_FUZZ)
  return()
endif()

if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "LOOM_FUZZ=ON needs clang (libFuzzer is part of clang), but the C++ compiler is "
                      "${CMAKE_CXX_COMPILER_ID} (${CMAKE_CXX_COMPILER}). Use a separate build folder configured "
                      "with -DCMAKE_CXX_COMPILER=clang++-14, or run tools/fuzz.sh, which does.")
endif()
string(TOUPPER "${LOOM_CUDA}" _loom_fuzz_cuda)
if(_loom_fuzz_cuda STREQUAL "ON")
  message(FATAL_ERROR "LOOM_FUZZ=ON builds CPU-only: configure it with -DLOOM_CUDA=OFF")
endif()
set(LOOM_CUDA OFF)  # AUTO means OFF here; the cache keeps what was given

add_compile_options(
  $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link,address,undefined>
  $<$<COMPILE_LANGUAGE:CXX>:-fno-sanitize-recover=undefined>
  $<$<COMPILE_LANGUAGE:CXX>:-fno-omit-frame-pointer>)
add_link_options(-fsanitize=address,undefined)
