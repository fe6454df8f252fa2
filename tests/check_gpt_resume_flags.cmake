# train_gpt --resume and the flags: a left-out flag takes the checkpoint's value (said), a changed --lr
# is applied (said), a changed --seed (which fixed the split) is refused, naming both values.
# cmake -DPROGRAM=<train_gpt> -DWORK=<folder> -P check_gpt_resume_flags.cmake
file(REMOVE_RECURSE "${WORK}")
set(common --eval-interval 2 --eval-iters 1 --n-layer 1 --max-new-tokens 5)
execute_process(COMMAND ${PROGRAM} ${common} --steps 2 --seed 7 --out ${WORK}/first RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the first run failed: ${err}")
endif()
function(resume expect_rc pattern)
  execute_process(COMMAND ${PROGRAM} ${common} --steps 3 --out ${WORK}/resumed --resume ${WORK}/first/checkpoint.safetensors ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL expect_rc OR NOT "${out}${err}" MATCHES "${pattern}")
    message(FATAL_ERROR "resume ${ARGN}: exit ${rc} (expected ${expect_rc}), output without '${pattern}':\n${out}${err}")
  endif()
endfunction()
resume(0 "resume: continuing '.*'; from the checkpoint: --seed 7")
resume(0 "changed from here on: --lr 0.01 \\(was 0.001\\)" --lr 0.01)
resume(1 "was trained with --seed 7, and this run gives --seed 5; it cannot change on resume, since it fixed the train/validation split" --seed 5)
