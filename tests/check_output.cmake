# Runs a program and checks that it exits with 0 and that its output matches every regular expression.
# cmake -DPROGRAM=<path> "-DARGS=a;b" "-DEXPECT=regex1;regex2" -P check_output.cmake
execute_process(COMMAND ${PROGRAM} ${ARGS} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${rc}")
endif()
foreach(pattern IN LISTS EXPECT)
  if(NOT out MATCHES "${pattern}")
    message(FATAL_ERROR "the output of ${PROGRAM} does not match: ${pattern}")
  endif()
endforeach()
