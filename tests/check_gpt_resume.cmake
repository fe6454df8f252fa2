# train_gpt resumes bit-exactly: 12 steps straight, and 6 steps then 6 more from the checkpoint,
# end with byte-identical checkpoints (weights, AdamW's moments and step counts, metadata).
# cmake -DPROGRAM=<train_gpt> -DWORK=<folder> -P check_gpt_resume.cmake
set(common --n-layer 2 --eval-interval 3 --eval-iters 2 --max-new-tokens 5 --dropout 0.1)
file(REMOVE_RECURSE ${WORK})
foreach(run "straight;12" "first;6")
  list(GET run 0 name)
  list(GET run 1 steps)
  execute_process(COMMAND ${PROGRAM} ${common} --steps ${steps} --out ${WORK}/${name} RESULT_VARIABLE rc OUTPUT_QUIET)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "train_gpt --steps ${steps} exited with ${rc}")
  endif()
endforeach()
execute_process(COMMAND ${PROGRAM} ${common} --steps 12 --resume ${WORK}/first/checkpoint.safetensors --out ${WORK}/resumed
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "train_gpt --resume exited with ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK}/straight/checkpoint.safetensors
                        ${WORK}/resumed/checkpoint.safetensors RESULT_VARIABLE differ)
if(differ)
  message(FATAL_ERROR "the resumed run's checkpoint differs from the straight run's")
endif()
