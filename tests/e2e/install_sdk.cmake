# Installs Loom to a fresh prefix, builds sdk/examples/fifo_evictor (and, when Loom has CUDA,
# sdk/examples/simple_cuda_attention) against that prefix only (separate CMake projects),
# installs them next to the in-tree plugins, and checks that the installed `loom` loads them
# through the registry. Run by ctest as e2e.install_sdk.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... [-DLOOM_HAVE_CUDA=ON] -P install_sdk.cmake
foreach(var BUILD_DIR SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_sdk.cmake needs -D${var}=...")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

function(expect_output what)
  string(FIND "${last_output}" "${what}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected '${what}' in the output:\n${last_output}")
  endif()
endfunction()

set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")

# The example sees nothing of the source or build tree: only the installed package.
file(COPY "${SOURCE_DIR}/sdk/examples/fifo_evictor" DESTINATION "${WORK_DIR}")
run(${CMAKE_COMMAND} -S "${WORK_DIR}/fifo_evictor" -B "${WORK_DIR}/fifo_build"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_INSTALL_PREFIX=${prefix}" -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${WORK_DIR}/fifo_build")
# Its own test, on the SDK's cache replay: a plugin author's unit test needs nothing else.
run(${CMAKE_CTEST_COMMAND} --test-dir "${WORK_DIR}/fifo_build" --output-on-failure)
expect_output("100% tests passed")
run(${CMAKE_COMMAND} --install "${WORK_DIR}/fifo_build")

set(ENV{LOOM_PLUGIN_PATH} "")
run("${prefix}/bin/loom" plugins --kind evictor)
expect_output("${prefix}/lib/loom/plugins")
# The search path is this install's own, wherever it is: no folder fixed at build time.
string(FIND "${last_output}" "/usr/local/lib/loom/plugins" elsewhere)
if(NOT elsewhere EQUAL -1)
  message(FATAL_ERROR "an install in ${prefix} searches /usr/local/lib/loom/plugins:\n${last_output}")
endif()
expect_output("fifo")
expect_output("First in, first out")
run("${prefix}/bin/loom" plugins --describe evictor/fifo)
expect_output("log_evictions")
run("${prefix}/bin/loom" plugins --describe "${WORK_DIR}/fifo_build/libloom_evictor_fifo.so")
expect_output("evictor/fifo 1.0.0")
if(EXISTS "${prefix}/lib/loom/plugins/libloom_scheduler_fcfs.so")
  # A whole config with the third-party evictor swapped in by one override.
  run("${prefix}/bin/loom" config --explain "${SOURCE_DIR}/configs/default.toml" --set evictor.plugin=fifo
      --set evictor.log_evictions=true)
  expect_output("evictor plugin 'fifo'")
  expect_output("log_evictions = true")
endif()
# A GPU plugin out of tree: CUDA kernels of its own plus Loom::kernels, against the package only.
# (The GPU engine runs it in test_engine_gpu, from the same sources.)
if(LOOM_HAVE_CUDA)
  file(COPY "${SOURCE_DIR}/sdk/examples/simple_cuda_attention" DESTINATION "${WORK_DIR}")
  run(${CMAKE_COMMAND} -S "${WORK_DIR}/simple_cuda_attention" -B "${WORK_DIR}/simple_build"
      "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_INSTALL_PREFIX=${prefix}" -DCMAKE_BUILD_TYPE=Release)
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/simple_build")
  run(${CMAKE_COMMAND} --install "${WORK_DIR}/simple_build")
  run("${prefix}/bin/loom" plugins --kind attention)
  expect_output("simple")
  expect_output("Example GPU backend")
  run("${prefix}/bin/loom" plugins --describe attention/simple)
  expect_output("attention/simple 1.0.0")
endif()
# The shipped configs are installed and found by name, from any folder.
execute_process(COMMAND "${prefix}/bin/loom" config --explain default --set evictor.plugin=fifo
                WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc OUTPUT_VARIABLE last_output ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "loom config --explain default failed in an install (${rc}):\n${last_output}\n${err}")
endif()
expect_output("${prefix}/share/loom/configs/default.toml")
message(STATUS "installed SDK builds and loads out-of-tree plugins")
