# Installs the built xgrad into a scratch prefix, then configures, builds and runs tests/consumer against it.
# cmake -DBUILD_DIR=<xgrad build> -DSOURCE_DIR=<xgrad source> -P check.cmake
set(prefix "${BUILD_DIR}/consumer-check/install")
set(consumer_build "${BUILD_DIR}/consumer-check/build")
file(REMOVE_RECURSE "${BUILD_DIR}/consumer-check")
foreach(step
    "${CMAKE_COMMAND};--install;${BUILD_DIR};--prefix;${prefix}"
    "${CMAKE_COMMAND};-S;${SOURCE_DIR}/tests/consumer;-B;${consumer_build};-DCMAKE_PREFIX_PATH=${prefix};-DCMAKE_BUILD_TYPE=Release"
    "${CMAKE_COMMAND};--build;${consumer_build}"
    "${consumer_build}/consumer")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer check failed at: ${step}")
  endif()
endforeach()
