# One consumer test (script mode): configures, builds and runs tests/consumer/project from scratch in
# WORK_DIR, getting bijou one way (MODE):
#   find_package      install bijou (configured from BIJOU_SOURCE_DIR, tests/examples/benchmarks OFF)
#                     into WORK_DIR/stage, move the tree to WORK_DIR/prefix and delete bijou's build
#                     dir (the installed package must be relocatable and self-contained), then
#                     find_package(bijou CONFIG REQUIRED) with CMAKE_PREFIX_PATH=WORK_DIR/prefix
#   add_subdirectory  add_subdirectory(BIJOU_SOURCE_DIR ...)
#   fetchcontent      FetchContent_Declare(bijou SOURCE_DIR BIJOU_SOURCE_DIR), fully disconnected
# The consumer project is built with the same generator, C++ compiler, build type and flags as the
# outer build, and its own ctest runs every program it builds.
#
# cmake -DMODE=... -DBIJOU_SOURCE_DIR=... -DPROJECT_DIR=... -DWORK_DIR=... -DGENERATOR=...
#       [-DMAKE_PROGRAM=...] -DCXX_COMPILER=... [-DBUILD_TYPE=...] [-DCXX_FLAGS=...]
#       [-DEXE_LINKER_FLAGS=...] [-DWERROR=ON|OFF] [-DJOBS=2] [-DCTEST_COMMAND=...] -P BijouConsumerTest.cmake
cmake_minimum_required(VERSION 3.25)

foreach(var MODE BIJOU_SOURCE_DIR PROJECT_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "BijouConsumerTest: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED JOBS)
  set(JOBS 2)
endif()
if(NOT CTEST_COMMAND)
  get_filename_component(cmake_bin_dir "${CMAKE_COMMAND}" DIRECTORY)
  set(CTEST_COMMAND "${cmake_bin_dir}/ctest")
endif()
if(WERROR)
  set(WERROR ON)
else()
  set(WERROR OFF)
endif()

# Runs a command, echoing it; stops the test if it fails.
function(run)
  execute_process(COMMAND ${ARGN} COMMAND_ECHO STDOUT RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " cmd)
    message(FATAL_ERROR "consumer.${MODE}: command failed (${rc}):\n  ${cmd}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(common -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
    "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
    "-DCMAKE_EXE_LINKER_FLAGS=${EXE_LINKER_FLAGS}"
    -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
if(MAKE_PROGRAM)
  list(APPEND common "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
set(config_args)
if(BUILD_TYPE)
  set(config_args --config "${BUILD_TYPE}")
endif()

set(consumer_build "${WORK_DIR}/consumer-build")
if(MODE STREQUAL "find_package")
  set(bijou_build "${WORK_DIR}/bijou-build")
  run("${CMAKE_COMMAND}" -S "${BIJOU_SOURCE_DIR}" -B "${bijou_build}" ${common}
      -DBIJOU_BUILD_TESTS=OFF -DBIJOU_BUILD_EXAMPLES=OFF -DBIJOU_BUILD_BENCHMARKS=OFF
      "-DCMAKE_INSTALL_PREFIX=${WORK_DIR}/stage")
  run("${CMAKE_COMMAND}" --install "${bijou_build}" ${config_args})
  # Relocation: nothing may point back at the install prefix or at bijou's build tree.
  file(RENAME "${WORK_DIR}/stage" "${WORK_DIR}/prefix")
  file(REMOVE_RECURSE "${bijou_build}")
  set(consume_args -DBIJOU_CONSUME=find_package "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
elseif(MODE STREQUAL "add_subdirectory")
  set(consume_args -DBIJOU_CONSUME=add_subdirectory "-DBIJOU_SOURCE_DIR=${BIJOU_SOURCE_DIR}")
elseif(MODE STREQUAL "fetchcontent")
  set(consume_args -DBIJOU_CONSUME=fetchcontent "-DBIJOU_SOURCE_DIR=${BIJOU_SOURCE_DIR}"
      -DFETCHCONTENT_FULLY_DISCONNECTED=ON)
else()
  message(FATAL_ERROR "BijouConsumerTest: unknown MODE '${MODE}'")
endif()

# The README's quick start is built and run against the installed package, from its file in the
# source tree, unchanged. The other two modes build only the consumer programs: they check how the
# target is obtained, which the quick start would check a second and third time at ~30 s each.
if(MODE STREQUAL "find_package")
  set(quickstart_args "-DBIJOU_QUICKSTART=${BIJOU_SOURCE_DIR}/examples/quickstart/quickstart.cpp"
                      -DBIJOU_RUN_QUICKSTART=ON)
else()
  set(quickstart_args)
endif()
run("${CMAKE_COMMAND}" -S "${PROJECT_DIR}" -B "${consumer_build}" ${common} ${consume_args}
    "-DBIJOU_CONSUMER_WERROR=${WERROR}" ${quickstart_args})

if(MODE STREQUAL "find_package")
  # The package must have come from the moved prefix, not from anywhere else on the system.
  file(STRINGS "${consumer_build}/CMakeCache.txt" bijou_dir REGEX "^bijou_DIR:")
  string(REGEX REPLACE "^bijou_DIR:[A-Z]+=" "" bijou_dir "${bijou_dir}")
  file(REAL_PATH "${WORK_DIR}/prefix" prefix)
  file(REAL_PATH "${bijou_dir}" bijou_dir)
  string(FIND "${bijou_dir}/" "${prefix}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "consumer.find_package: found bijou in ${bijou_dir}, not under ${prefix}")
  endif()
endif()

run("${CMAKE_COMMAND}" --build "${consumer_build}" ${config_args} --parallel ${JOBS})
run("${CTEST_COMMAND}" --test-dir "${consumer_build}" ${config_args} --output-on-failure --no-tests=error)
message(STATUS "consumer.${MODE}: ok")
