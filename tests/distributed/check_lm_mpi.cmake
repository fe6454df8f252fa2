# train_lm under mpirun on 2 ranks: 30 steps straight and 15 + 15 resumed end with byte-identical
# checkpoints, and the straight run differs from one process's (the ranks' batches are not rank 0's).
# cmake "-DMPIRUN=mpirun;..." -DPROGRAM=<train_lm> -DWORK=<folder> -P check_lm_mpi.cmake
set(common --eval-interval 10 --eval-batches 2 --batch 8 --sample-length 10)
file(REMOVE_RECURSE ${WORK})
function(run_lm launch)
  execute_process(COMMAND ${launch} ${PROGRAM} ${common} ${ARGN} OUTPUT_VARIABLE out ERROR_VARIABLE err
                  RESULT_VARIABLE rc TIMEOUT 60)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "train_lm ${ARGN} exited with ${rc}:\n${out}${err}")
  endif()
endfunction()
run_lm("${MPIRUN};-np;2" --steps 30 --out ${WORK}/straight)
run_lm("${MPIRUN};-np;2" --steps 15 --out ${WORK}/first)
run_lm("${MPIRUN};-np;2" --steps 30 --resume ${WORK}/first/checkpoint.safetensors --out ${WORK}/resumed)
run_lm("" --steps 30 --out ${WORK}/one-process)
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK}/straight/checkpoint.safetensors
                        ${WORK}/resumed/checkpoint.safetensors RESULT_VARIABLE differ)
if(differ)
  message(FATAL_ERROR "the resumed 2-rank run's checkpoint differs from the straight run's")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK}/straight/checkpoint.safetensors
                        ${WORK}/one-process/checkpoint.safetensors RESULT_VARIABLE differ)
if(NOT differ)
  message(FATAL_ERROR "the 2-rank run ended where one process does: the second rank's batches did not count")
endif()
foreach(f vectors.tsv metadata.tsv losses.csv report.html)
  if(NOT EXISTS ${WORK}/straight/${f})
    message(FATAL_ERROR "rank 0 did not write ${f}")
  endif()
endforeach()
