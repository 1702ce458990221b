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
         COMMAND ${CMAKE_COMMAND} "-DEXE=${_exe}" "-DDET=${_det}" "-DRUNS=one:40:fresh:1;two:20:fresh:1;two:40:resume:1"
                 -DA=one -DB=two -P ${CMAKE_CURRENT_SOURCE_DIR}/mnist_glow/runs_check.cmake
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

# Other data sources (--data, data.hpp): a tool writes small data sets in CIFAR-10's binary format
# and as PNG folders (CIFAR-10 itself cannot be downloaded here). The 3-channel Glow L=3 trains on
# each RGB source, then every command runs on its checkpoint; a 1-channel Glow trains on a gray
# folder; and a wrong source is refused with a message naming it. About 15 s in all on one core.
add_executable(mnist_glow_make_test_data mnist_glow/make_test_data.cpp)
target_link_libraries(mnist_glow_make_test_data PRIVATE bijou::bijou PNG::PNG)
target_include_directories(mnist_glow_make_test_data PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
bijou_warnings(mnist_glow_make_test_data)
add_test(NAME examples.mnist_glow.make_test_data COMMAND mnist_glow_make_test_data ${_dir}/data WORKING_DIRECTORY ${_dir})
set_tests_properties(examples.mnist_glow.make_test_data PROPERTIES TIMEOUT 60 LABELS "example"
                     FIXTURES_SETUP mnist_glow_test_data)
set(_cifar cifar10:${_dir}/data/cifar10)
set(_rgb --steps-per-level 1 --hidden 8 --batch 8 --init-size 16 --eval-size 20 --threads 1 --log-every 1
         --eval-every 0 --save-every 0 --warmup 5 --minutes 1)
mnist_glow_smoke(rgb_train ARGS train --data ${_cifar} --steps 30 --overwrite --checkpoint rgb.safetensors ${_rgb}
                 FILES rgb.safetensors JSON train
                 EXPECT "Glow L=3 RGB" "200 training images \\(3x32x32\\), 20 test images" "\"stopped\":\"steps\""
                 REQUIRES mnist_glow_test_data FIXTURE_SETUP mnist_glow_rgb_ckpt)
mnist_glow_smoke(rgb_eval ARGS eval --data ${_cifar} --checkpoint rgb.safetensors --threads 1
                 EXPECT "test bits/dim: [0-9.]+ \\(over the 3,072 dimensions\\)" "\"data\":\"cifar10\",\"test_images\":40,"
                 REQUIRES "mnist_glow_test_data;mnist_glow_rgb_ckpt")
mnist_glow_smoke(rgb_sample ARGS sample --checkpoint rgb.safetensors --out rgb_pictures --count 4 --each --temperatures 0.7
                 --threads 1 FILES rgb_pictures/samples_t0.70.png PNG_SIZE 32x32
                 PNGS rgb_pictures/samples_t0.70/000.png rgb_pictures/samples_t0.70/003.png REQUIRES mnist_glow_rgb_ckpt)
mnist_glow_smoke(rgb_interpolate ARGS interpolate --data ${_cifar} --checkpoint rgb.safetensors --out rgb_pictures --points 3
                 --threads 1 EXPECT "test images 0 \\(class 0\\) -> 1 \\(class 1\\)" FILES rgb_pictures/interpolation.png
                 REQUIRES "mnist_glow_test_data;mnist_glow_rgb_ckpt")
mnist_glow_smoke(rgb_manipulate ARGS manipulate --data ${_cifar} --checkpoint rgb.safetensors --out rgb_pictures --from 1
                 --to 2 --rows 2 --threads 1 EXPECT "2 test images of class 1" FILES rgb_pictures/manipulation.png
                 REQUIRES "mnist_glow_test_data;mnist_glow_rgb_ckpt")
mnist_glow_smoke(rgb_resume ARGS train --resume --data ${_cifar} --steps 40 --checkpoint rgb.safetensors --threads 1
                 --minutes 1 JSON train EXPECT "resumed from rgb.safetensors at step 30" "\"steps\":40,"
                 REQUIRES "mnist_glow_test_data;mnist_glow_rgb_ckpt")
set_tests_properties(examples.mnist_glow.rgb_resume PROPERTIES DEPENDS
                     "examples.mnist_glow.rgb_eval;examples.mnist_glow.rgb_sample;examples.mnist_glow.rgb_interpolate;examples.mnist_glow.rgb_manipulate")
# A flat folder of 50 RGB 24x24 PNGs: the last 5 are the test set; samples are cropped to 24x24.
mnist_glow_smoke(folder_train ARGS train --data folder:${_dir}/data/rgb_folder --steps 10 --overwrite
                 --checkpoint folder.safetensors ${_rgb} JSON train
                 EXPECT "45 training images \\(3x24x24\\), 5 test images"
                 REQUIRES mnist_glow_test_data FIXTURE_SETUP mnist_glow_folder_ckpt)
mnist_glow_smoke(folder_sample ARGS sample --checkpoint folder.safetensors --out folder_pictures --count 2 --each
                 --temperatures 1 --threads 1 PNG_SIZE 24x24 PNGS folder_pictures/samples_t1.00/001.png
                 REQUIRES mnist_glow_folder_ckpt)
# train/ and test/ subfolders of gray 28x28 PNGs: the 1-channel models, MNIST's padding.
mnist_glow_smoke(gray_folder ARGS train --data folder:${_dir}/data/gray_folder --levels 2 --steps 10 --overwrite
                 --checkpoint gray.safetensors ${_rgb} JSON train
                 EXPECT "Glow L=2" "40 training images \\(1x28x28\\), 10 test images" REQUIRES mnist_glow_test_data)
# Refusals, each with its message.
mnist_glow_refusal(refuse_unlabelled "manipulate: folder:.*has no labels"
                   manipulate --data folder:${_dir}/data/rgb_folder --checkpoint folder.safetensors)
mnist_glow_refusal(refuse_unlabelled_conditional "train --conditional: folder:.*has no labels"
                   train --conditional --data folder:${_dir}/data/gray_folder --overwrite --checkpoint refused.safetensors
                   --threads 1 --hidden 8 --steps-per-level 1)
mnist_glow_refusal(refuse_channels "3-channel images, but this model takes 1"
                   eval --data ${_cifar} --checkpoint smoke.safetensors)
mnist_glow_refusal(refuse_rgb_levels "3-channel images train Glow with 3 levels"
                   train --data ${_cifar} --levels 2 --overwrite --checkpoint refused.safetensors)
mnist_glow_refusal(refuse_data_kind "--data imagenet:x: unknown kind 'imagenet'" eval --data imagenet:x
                   --checkpoint smoke.safetensors)
mnist_glow_refusal(refuse_large_images "big_folder \\(training images\\): the images are 40x40; .*resize them to at most 32x32"
                   train --data folder:${_dir}/data/big_folder --overwrite --checkpoint refused.safetensors)
set_tests_properties(examples.mnist_glow.refuse_large_images PROPERTIES FIXTURES_REQUIRED mnist_glow_test_data)
mnist_glow_refusal(refuse_missing_cifar "nowhere: not a directory \\(expected the extracted cifar-10-batches-bin folder\\)" train --data cifar10:${_dir}/data/nowhere --overwrite
                   --checkpoint refused.safetensors)
set_tests_properties(examples.mnist_glow.refuse_unlabelled PROPERTIES FIXTURES_REQUIRED "mnist_glow_test_data;mnist_glow_folder_ckpt")
set_tests_properties(examples.mnist_glow.refuse_channels PROPERTIES FIXTURES_REQUIRED "mnist_glow_test_data;mnist_glow_ckpt")
set_tests_properties(examples.mnist_glow.refuse_unlabelled_conditional examples.mnist_glow.refuse_rgb_levels
                     PROPERTIES FIXTURES_REQUIRED mnist_glow_test_data)
set_tests_properties(examples.mnist_glow.refuse_data_kind PROPERTIES FIXTURES_REQUIRED mnist_glow_ckpt)
mnist_glow_refusal(refuse_default_data "rgb.safetensors was trained on cifar10 data: pass --data cifar10:DIR"
                   eval --checkpoint rgb.safetensors)
mnist_glow_refusal(refuse_resume_other_kind "continues on the same kind \\(--data cifar10:DIR\\), not folder"
                   train --resume --data folder:${_dir}/data/rgb_folder --checkpoint rgb.safetensors)
set_tests_properties(examples.mnist_glow.refuse_default_data examples.mnist_glow.refuse_resume_other_kind PROPERTIES
                     FIXTURES_REQUIRED "mnist_glow_test_data;mnist_glow_rgb_ckpt")

# Under mpirun (with MPI): data-parallel training is the one-process training (30 steps in one
# process against 15 on 2 processes + 15 resumed on 3, every parameter within 1e-4), and an error on
# the ranks ends the job with the rank named.
if(BIJOU_MPI)
  add_executable(mnist_glow_compare_checkpoints mnist_glow/compare_checkpoints.cpp)
  target_link_libraries(mnist_glow_compare_checkpoints PRIVATE nlohmann_json::nlohmann_json)
  bijou_warnings(mnist_glow_compare_checkpoints)
  add_test(NAME examples.mnist_glow.mpi_equals_one_process
           COMMAND ${CMAKE_COMMAND} "-DEXE=${_exe}" "-DDET=${_det}" "-DMPIEXEC=${BIJOU_MPIEXEC}"
                   "-DRUNS=solo:30:fresh:1;dist:15:fresh:2;dist:30:resume:3" -DA=solo -DB=dist
                   "-DCOMPARE=$<TARGET_FILE:mnist_glow_compare_checkpoints>" -DTOL=1e-4
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/mnist_glow/runs_check.cmake
           WORKING_DIRECTORY ${_dir})
  set_tests_properties(examples.mnist_glow.mpi_equals_one_process PROPERTIES TIMEOUT 300 LABELS "example;distributed"
                       ENVIRONMENT "${BIJOU_MPIEXEC_ENV}")
  add_test(NAME examples.mnist_glow.mpi_error_names_the_rank
           COMMAND ${BIJOU_MPIEXEC} 2 ${_exe} train --data cifar10:${_dir}/data/nowhere --overwrite
                   --checkpoint refused.safetensors --threads 1)
  set_tests_properties(examples.mnist_glow.mpi_error_names_the_rank PROPERTIES TIMEOUT 60 LABELS "example;distributed"
                       ENVIRONMENT "${BIJOU_MPIEXEC_ENV}"
                       PASS_REGULAR_EXPRESSION "bijou: rank [01] of 2: .*nowhere: not a directory")
endif()
