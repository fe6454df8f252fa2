# One rank fails mid-training: every rank must be gone within 10 s, the job's exit status non-zero,
# the output must name the failed rank, and rank 0's checkpoint must be whole (of the step before).
# cmake "-DMPIRUN=mpirun;--allow-run-as-root;..." -DPROGRAM=<test_ddp> -DMODE=throw|kill -DRANK=1
#       -DRANKS=2 -DWORK=<folder> "-DEXPECT=<regex naming the rank>" -P check_fault.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
string(TIMESTAMP start "%s" UTC)
execute_process(COMMAND ${MPIRUN} -np ${RANKS} ${PROGRAM} fault ${MODE} ${RANK} ${WORK}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 30)
string(TIMESTAMP stop "%s" UTC)
math(EXPR seconds "${stop} - ${start}")
message("${out}${err}")
message("exit status ${rc} after ${seconds} s")
if(rc EQUAL 0 OR rc MATCHES "timeout")
  message(FATAL_ERROR "the job did not fail (exit status: ${rc})")
endif()
if(seconds GREATER 10)
  message(FATAL_ERROR "the job took ${seconds} s to end after the failure, more than 10 s")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT}")
  message(FATAL_ERROR "the output does not name the failed rank: expected ${EXPECT}")
endif()
execute_process(COMMAND ${PROGRAM} verify_checkpoint ${WORK}/checkpoint.safetensors RESULT_VARIABLE verified)
if(NOT verified EQUAL 0)
  message(FATAL_ERROR "the checkpoint left behind is not the whole one of the step before the failure")
endif()
if(MODE STREQUAL "kill" AND RANK EQUAL 0)   # the torn write did happen, beside the whole file
  file(GLOB torn ${WORK}/.checkpoint.safetensors.tmp-*)
  if(NOT torn)
    message(FATAL_ERROR "no half-written temporary: rank 0 was not killed inside its checkpoint write")
  endif()
endif()
