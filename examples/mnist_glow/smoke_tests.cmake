# Smoke tests of mnist_glow (included by examples/CMakeLists.txt when tests are built): a few seconds
# of training of a tiny Glow on a subset of the shipped MNIST, then every other subcommand on its
# checkpoint, a resume, the bit-identical resume check, and resumes from forged bad metadata. About
# 10 s in all on one core.
set(_dir ${CMAKE_CURRENT_BINARY_DIR}/mnist_glow_smoke)
set(_exe $<TARGET_FILE:mnist_glow>)
set(_check ${CMAKE_CURRENT_SOURCE_DIR}/mnist_glow/smoke_check.cmake)
set(_tiny --levels 2 --steps-per-level 1 --hidden 8 --train-size 2000 --eval-size 200 --batch 16 --init-size 64
          --threads 1 --log-every 1)
file(MAKE_DIRECTORY ${_dir})

function(mnist_glow_smoke name)
  cmake_parse_arguments(A "" "JSON;FIXTURE_SETUP" "ARGS;FILES;REQUIRES" ${ARGN})
  add_test(NAME examples.mnist_glow.${name}
           COMMAND ${CMAKE_COMMAND} "-DEXE=${_exe}" "-DARGS=${A_ARGS}" "-DFILES=${A_FILES}" "-DJSON=${A_JSON}"
                   -P ${_check}
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
