# LOOM_SANITIZE: build every target (core, kernels, plugins, tools, tests) with a sanitizer.
#   address  AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer; any report aborts
#            (-fno-sanitize-recover=all), so a test that triggers one fails.
#   thread   ThreadSanitizer (the CPU kernels' thread pool, and everything that calls it).
# The flags go to every compile and every link, MODULE libraries included: g++ then links the
# sanitizer runtime into each plugin as well (-lasan -lubsan / -ltsan), so plugins keep linking
# with -z defs, and dlopen'ing them into an instrumented loom or test binary finds the runtime
# already loaded. Not exported with the SDK: an out-of-tree plugin built against an installed
# sanitized Loom is uninstrumented, which ASan tolerates. tools/sanitize.sh drives both builds.
set(LOOM_SANITIZE "" CACHE STRING "Build with a sanitizer: address (ASan+UBSan), thread (TSan), or empty for none")
set_property(CACHE LOOM_SANITIZE PROPERTY STRINGS "" address thread)

set(_loom_sanitize_flags "")
if(LOOM_SANITIZE STREQUAL "address")
  set(_loom_sanitize_flags -fsanitize=address,undefined -fno-sanitize-recover=all)
elseif(LOOM_SANITIZE STREQUAL "thread")
  set(_loom_sanitize_flags -fsanitize=thread)
elseif(NOT LOOM_SANITIZE STREQUAL "")
  message(FATAL_ERROR "LOOM_SANITIZE must be address, thread or empty (got '${LOOM_SANITIZE}')")
endif()

if(_loom_sanitize_flags)
  if(LOOM_HAVE_CUDA)
    message(FATAL_ERROR "LOOM_SANITIZE is for the CPU build: configure with -DLOOM_CUDA=OFF")
  endif()
  # C++ is the only language of a CPU-only build. Frame pointers keep the reports' stacks whole.
  # The sanitizers' instrumentation makes g++ 12 warn "may be used uninitialized" inside
  # libstdc++ itself (<regex>, std::function), which would stop a -Werror build; the warning
  # stays on in the normal builds, where it is meaningful.
  add_compile_options(${_loom_sanitize_flags} -fno-omit-frame-pointer -Wno-maybe-uninitialized)
  # Boost.Asio (loom serve) uses std::atomic_thread_fence, which TSan does not model: g++ says so
  # with -Wtsan at every use. The server's threads share state only under mutexes.
  if(LOOM_SANITIZE STREQUAL "thread")
    add_compile_options(-Wno-tsan)
  endif()
  add_link_options(${_loom_sanitize_flags})
  list(JOIN _loom_sanitize_flags " " _loom_sanitize_text)
  message(STATUS "Loom: sanitizer '${LOOM_SANITIZE}' on every target (${_loom_sanitize_text})")
endif()
