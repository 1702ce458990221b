# Smoke tests of mnist_glow (included by examples/CMakeLists.txt when tests are built): a few seconds
# of training of a tiny Glow on a subset of the shipped MNIST, then every other subcommand on its
# checkpoint, a resume, the bit-identical resume check, and resumes from forged bad metadata. About
# 10 s in all on one core. Then the same for the class-conditional Glow L=3 (train --conditional):
# eval, classify, sample --digit --each, the one-row-per-digit grid, interpolate, manipulate, and the
# refusals of the conditional-only commands on the unconditional checkpoint.
set(_dir ${CMAKE_CURRENT_BINARY_DIR}/mnist_glow_smoke)
set(_exe $<TARGET_FILE:mnist_glow>)
set(_check ${CMAKE_CURRENT_SOURCE_DIR}/mnist_glow/smoke_check.cmake)
set(_tiny --levels 2 --steps-per-level 1 --hidden 8 --train-size 2000 --eval-size 200 --batch 16 --init-size 64
          --threads 1 --log-every 1)
file(MAKE_DIRECTORY ${_dir})

function(mnist_glow_smoke name)
  cmake_parse_arguments(A "" "JSON;FIXTURE_SETUP;PNG_SIZE" "ARGS;FILES;REQUIRES;EXPECT;PNGS" ${ARGN})
  add_test(NAME examples.mnist_glow.${name}
           COMMAND ${CMAKE_COMMAND} "-DEXE=${_exe}" "-DARGS=${A_ARGS}" "-DFILES=${A_FILES}" "-DJSON=${A_JSON}"
                   "-DEXPECT=${A_EXPECT}" "-DPNG_SIZE=${A_PNG_SIZE}" "-DPNGS=${A_PNGS}" -P ${_check}
           WORKING_DIRECTORY ${_dir})
  set_tests_properties(examples.mnist_glow.${name} PROPERTIES TIMEOUT 60 LABELS "example")
  if(A_FIXTURE_SETUP)
    set_tests_properties(examples.mnist_glow.${name} PROPERTIES FIXTURES_SETUP ${A_FIXTURE_SETUP})
  endif()
  if(A_REQUIRES)
    set_tests_properties(examples.mnist_glow.${name} PROPERTIES FIXTURES_REQUIRED "${A_REQUIRES}")
  endif()
endfunction()

# 3 s budget for the whole process (start-up and save included); the JSON line must say it stopped on time.
mnist_glow_smoke(train ARGS train --minutes 0.05 --overwrite --checkpoint smoke.safetensors ${_tiny}
                 FILES smoke.safetensors JSON train FIXTURE_SETUP mnist_glow_ckpt)
mnist_glow_smoke(eval ARGS eval --checkpoint smoke.safetensors --threads 1 --limit 2000 JSON eval
                 REQUIRES mnist_glow_ckpt)
mnist_glow_smoke(sample ARGS sample --checkpoint smoke.safetensors --out pictures --count 16 --temperatures 0.5,1 --threads 1
                 FILES pictures/samples_t0.50.png pictures/samples_t1.00.png REQUIRES mnist_glow_ckpt)
mnist_glow_smoke(interpolate ARGS interpolate --checkpoint smoke.safetensors --out pictures --a 0 --b 1 --points 5 --threads 1
                 FILES pictures/interpolation.png REQUIRES mnist_glow_ckpt)
mnist_glow_smoke(manipulate ARGS manipulate --checkpoint smoke.safetensors --out pictures --rows 3 --threads 1
                 FILES pictures/manipulation.png REQUIRES mnist_glow_ckpt)
# Checkpoints with a bad training state (a cursor past the training set, n_bits outside 1..8, …),
# forged from the smoke checkpoint by a small tool, are refused with a message naming the field.
add_executable(mnist_glow_forge_metadata mnist_glow/forge_metadata.cpp)
target_link_libraries(mnist_glow_forge_metadata PRIVATE nlohmann_json::nlohmann_json)
bijou_warnings(mnist_glow_forge_metadata)
add_test(NAME examples.mnist_glow.bad_resume_metadata
         COMMAND ${CMAKE_COMMAND} "-DEXE=${_exe}" "-DFORGE=$<TARGET_FILE:mnist_glow_forge_metadata>"
                 "-DCKPT=smoke.safetensors" -P ${CMAKE_CURRENT_SOURCE_DIR}/mnist_glow/bad_resume_check.cmake
         WORKING_DIRECTORY ${_dir})
set_tests_properties(examples.mnist_glow.bad_resume_metadata PROPERTIES TIMEOUT 60 LABELS "example"
                     FIXTURES_REQUIRED mnist_glow_ckpt)
# Resume the smoke checkpoint once (another --minutes budget), after the commands that read it.
mnist_glow_smoke(resume ARGS train --resume --minutes 0.03 --checkpoint smoke.safetensors --threads 1 --eval-size 200
                 JSON train REQUIRES mnist_glow_ckpt)
set_tests_properties(examples.mnist_glow.resume PROPERTIES
                     DEPENDS "examples.mnist_glow.eval;examples.mnist_glow.sample;examples.mnist_glow.interpolate;examples.mnist_glow.manipulate;examples.mnist_glow.bad_resume_metadata")

# 40 steps in one run and 20 + 20 with --resume (crossing an epoch boundary) give the same file, byte for byte.
set(_det --levels 2 --steps-per-level 1 --hidden 8 --train-size 500 --eval-size 100 --batch 16 --init-size 64
         --threads 1 --warmup 5 --decay 0 --overwrite --log-every 100)
add_test(NAME examples.mnist_glow.resume_is_bit_identical
         COMMAND ${CMAKE_COMMAND} "-DEXE=${_exe}" "-DDET=${_det}" -P ${CMAKE_CURRENT_SOURCE_DIR}/mnist_glow/resume_check.cmake
         WORKING_DIRECTORY ${_dir})
set_tests_properties(examples.mnist_glow.resume_is_bit_identical PROPERTIES TIMEOUT 60 LABELS "example")

# The class-conditional Glow L=3 (the only conditional model type): a few steps of a tiny one on the
# images and their labels, then every command on its checkpoint. About 10 s in all on one core.
set(_cond --conditional --levels 3 --steps-per-level 1 --hidden 8 --train-size 1000 --eval-size 100 --batch 16
          --init-size 32 --threads 1 --log-every 1 --eval-every 0 --save-every 0)
mnist_glow_smoke(cond_train ARGS train --steps 100 --warmup 20 --minutes 1 --overwrite --checkpoint cond.safetensors ${_cond}
                 FILES cond.safetensors JSON train EXPECT "class-conditional" "\"conditional\":true"
                 FIXTURE_SETUP mnist_glow_cond_ckpt)
# eval reads the model type from the checkpoint (setting.context_shape): bits/dim of log p(x | y).
mnist_glow_smoke(cond_eval ARGS eval --checkpoint cond.safetensors --threads 1 --limit 300 JSON eval
                 EXPECT "\"conditional\":true" "\"model\":\"Glow L=3 class-conditional\"" REQUIRES mnist_glow_cond_ckpt)
mnist_glow_smoke(cond_classify ARGS classify --checkpoint cond.safetensors --threads 1 --limit 30 JSON classify
                 EXPECT "\"test_images\":30," "\"accuracy\":[0-9.]+" "confusion" REQUIRES mnist_glow_cond_ckpt)
mnist_glow_smoke(cond_sample_digit ARGS sample --checkpoint cond.safetensors --out cond_pictures --digit 3 --each --count 4
                 --temperatures 0.7 --threads 1
                 FILES cond_pictures/samples_digit3_t0.70.png PNG_SIZE 28x28
                 PNGS cond_pictures/digit_3_t0.70/000.png cond_pictures/digit_3_t0.70/003.png REQUIRES mnist_glow_cond_ckpt)
mnist_glow_smoke(cond_sample_rows ARGS sample --checkpoint cond.safetensors --out cond_pictures --per-digit 2
                 --temperatures 1 --threads 1 EXPECT "one row per digit"
                 FILES cond_pictures/samples_t1.00.png REQUIRES mnist_glow_cond_ckpt)
mnist_glow_smoke(cond_interpolate ARGS interpolate --checkpoint cond.safetensors --out cond_pictures --points 4 --threads 1
                 EXPECT "conditioned on digit 7" FILES cond_pictures/interpolation.png REQUIRES mnist_glow_cond_ckpt)
mnist_glow_smoke(cond_manipulate ARGS manipulate --checkpoint cond.safetensors --out cond_pictures --rows 2 --threads 1
                 EXPECT "decoded with label" FILES cond_pictures/manipulation.png REQUIRES mnist_glow_cond_ckpt)
# The conditional-only commands and options are refused, with a message, on an unconditional
# checkpoint; --conditional is refused for a model type that has no conditional version.
function(mnist_glow_refusal name regex)
  add_test(NAME examples.mnist_glow.${name} COMMAND ${_exe} ${ARGN} WORKING_DIRECTORY ${_dir})
  set_tests_properties(examples.mnist_glow.${name} PROPERTIES TIMEOUT 60 LABELS "example" WILL_FAIL FALSE
                       PASS_REGULAR_EXPRESSION "${regex}")
endfunction()
mnist_glow_refusal(refuse_classify "classify needs a class-conditional checkpoint" classify --checkpoint smoke.safetensors)
mnist_glow_refusal(refuse_sample_digit "sample --digit/--per-digit need a class-conditional checkpoint"
                   sample --checkpoint smoke.safetensors --digit 3)
mnist_glow_refusal(refuse_conditional_levels "class-conditional model \\(--conditional\\) is Glow with 3 levels only"
                   train --conditional --levels 2 --overwrite --checkpoint refused.safetensors)
set_tests_properties(examples.mnist_glow.refuse_classify examples.mnist_glow.refuse_sample_digit PROPERTIES
                     FIXTURES_REQUIRED mnist_glow_ckpt)
