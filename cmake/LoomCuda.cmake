# Resolves LOOM_CUDA (AUTO|ON|OFF) into LOOM_HAVE_CUDA and enables the CUDA language when used.
string(TOUPPER "${LOOM_CUDA}" _loom_cuda)
if(NOT _loom_cuda MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "LOOM_CUDA must be AUTO, ON or OFF (got '${LOOM_CUDA}')")
endif()

set(LOOM_HAVE_CUDA OFF)
if(NOT _loom_cuda STREQUAL "OFF")
  # The toolkit is often installed without being on PATH; look in its usual home too.
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS "/usr/local/cuda/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "/usr/local/cuda/bin/nvcc")
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90a CACHE STRING "GPU architectures to compile for (90a = H100/H200)")
    endif()
    # CMake 3.25 cannot pass C++20 to nvcc; kernels need no more than C++17.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(LOOM_HAVE_CUDA ON)
  elseif(_loom_cuda STREQUAL "ON")
    message(FATAL_ERROR "LOOM_CUDA=ON but no CUDA compiler was found: install the CUDA toolkit, "
                        "set CUDACXX to nvcc, or configure with -DLOOM_CUDA=OFF")
  endif()
endif()
