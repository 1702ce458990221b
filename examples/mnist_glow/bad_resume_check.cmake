cmake_minimum_required(VERSION 3.25)
# Forges copies of CKPT (a checkpoint of `mnist_glow train`, 2000 training images) with FORGE, each
# with one bad training-state field, and checks that mnist_glow refuses each before using it: exit
# status 1 (not a crash, not a run) and a "bijou: " message naming the file, the field, its value and
# the allowed range. A copy with only a harmless field changed must still evaluate (the forging itself
# is sound).
function(run_mnist_glow expect_rc expect_msg)
  execute_process(COMMAND ${EXE} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("mnist_glow ${ARGN}\n  -> ${rc}: ${out}${err}")
  if(NOT "${rc}" STREQUAL "${expect_rc}")
    message(FATAL_ERROR "mnist_glow ${ARGN} exited with '${rc}', expected ${expect_rc}")
  endif()
  if(expect_msg AND NOT err MATCHES "${expect_msg}")
    message(FATAL_ERROR "mnist_glow ${ARGN}: stderr does not match '${expect_msg}'")
  endif()
endfunction()

function(forge file)
  execute_process(COMMAND ${FORGE} ${CKPT} ${file} ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${FORGE} ${CKPT} ${file} ${ARGN} exited with ${rc}")
  endif()
endfunction()

set(resume train --resume --checkpoint forged.safetensors --threads 1 --eval-size 100 --steps 1)
set(eval eval --checkpoint forged.safetensors --threads 1 --limit 100)

forge(forged.safetensors example=forged)
run_mnist_glow(0 "" ${eval})

# field|value|command|the message expected after "bijou: forged.safetensors: __metadata__ " (a regex;
# its brackets must pair up, or CMake's list splitting would join the items after an open one)
set(cases
  "train.cursor|2001|resume|'train.cursor' = '2001' is out of range: it must be in \\[0, 2000\\]"
  "train.cursor|-1|resume|'train.cursor' = '-1' is not a non-negative integer: it must be in \\[0, 2000\\]"
  "train.n_bits|9|resume|'train.n_bits' = '9' is out of range: it must be in \\[1, 8\\]"
  "train.n_bits|0|eval|'train.n_bits' = '0' is out of range: it must be in \\[1, 8\\]"
  "train.epoch|-1|resume|'train.epoch' = '-1' is out of range: it must be in \\[0, [0-9]+\\]"
  "train.lr|nan|resume|'train.lr' = 'nan' is out of range: it must be a finite number > 0"
  "train.clip|inf|resume|'train.clip' = 'inf' is out of range: it must be a finite number >= 0")
foreach(c IN LISTS cases)
  string(REPLACE "|" ";" c "${c}")
  list(GET c 0 field)
  list(GET c 1 value)
  list(GET c 2 command)
  list(GET c 3 msg)
  forge(forged.safetensors "${field}=${value}")
  run_mnist_glow(1 "bijou: forged\\.safetensors: __metadata__ ${msg}" ${${command}})
endforeach()
