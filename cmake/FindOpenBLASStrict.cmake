# Finds OpenBLAS and defines the imported target xgrad_blas.
# xtensor-blas can fall back to slow reference products; xgrad refuses to: no real BLAS, no build.
if(TARGET xgrad_blas)
  return()
endif()
find_package(OpenBLAS CONFIG QUIET)
find_library(XGRAD_OPENBLAS_LIBRARY NAMES openblas HINTS ${OpenBLAS_LIBRARIES} PATH_SUFFIXES openblas-pthread)
find_path(XGRAD_OPENBLAS_INCLUDE_DIR cblas.h HINTS ${OpenBLAS_INCLUDE_DIRS}
  PATH_SUFFIXES x86_64-linux-gnu/openblas-pthread openblas NO_DEFAULT_PATH)
find_path(XGRAD_OPENBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES x86_64-linux-gnu/openblas-pthread openblas)
if(NOT XGRAD_OPENBLAS_LIBRARY OR NOT XGRAD_OPENBLAS_INCLUDE_DIR)
  message(FATAL_ERROR
    "xgrad needs OpenBLAS (a real BLAS for matmul) and did not find it.\n"
    "Install it with:  apt-get install libopenblas-dev")
endif()
include(CheckCXXSymbolExists)
set(CMAKE_REQUIRED_LIBRARIES ${XGRAD_OPENBLAS_LIBRARY})
set(CMAKE_REQUIRED_INCLUDES ${XGRAD_OPENBLAS_INCLUDE_DIR})
check_cxx_symbol_exists(openblas_set_num_threads cblas.h XGRAD_HAVE_OPENBLAS_THREADS)
unset(CMAKE_REQUIRED_LIBRARIES)
unset(CMAKE_REQUIRED_INCLUDES)
if(NOT XGRAD_HAVE_OPENBLAS_THREADS)
  message(FATAL_ERROR "${XGRAD_OPENBLAS_LIBRARY} does not look like OpenBLAS (no openblas_set_num_threads). "
                      "Install it with:  apt-get install libopenblas-dev")
endif()
add_library(xgrad_blas INTERFACE IMPORTED)
set_target_properties(xgrad_blas PROPERTIES
  INTERFACE_LINK_LIBRARIES "${XGRAD_OPENBLAS_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${XGRAD_OPENBLAS_INCLUDE_DIR}")
message(STATUS "xgrad: BLAS is ${XGRAD_OPENBLAS_LIBRARY}")
