# Compile-fail tests: code that must not compile, and the message it must fail with.
#
# As a module (include):
#   bijou_add_compile_fail_tests(DIRECTORY <dir> TARGET <target> [MAX_ERRORS <n>])
# adds one CTest per <dir>/<name>_ok.cpp and <dir>/<name>_ko.cpp, named compile_fail.<name>_ok|ko.
#   <name>_ok.cpp must compile.
#   <name>_ko.cpp must fail to compile, the compiler output must match every regex given on a line
#     `// expect: <regex>` of the file (CMake regex syntax; at least one such line), and it may contain
#     at most MAX_ERRORS (default 3) lines with "error:", since a diagnostic is only useful if it can
#     be read without scrolling through a template backtrace.
# Each pair's files should differ in one line, so the ko file fails for the reason it is about.
# The snippets are checked with -fsyntax-only by the project's C++ compiler, with C++20, the
# CMAKE_CXX_FLAGS, and the (transitive) include directories, definitions and options of <target>,
# read from the target itself at generate time (GCC and Clang only).
#
# As a script (cmake -DSOURCE=<file.cpp> -DFLAGS_FILE=<file> [-DMAX_ERRORS=<n>] -P BijouCompileFail.cmake):
# runs one check; FLAGS_FILE is the file that bijou_add_compile_fail_tests generates.

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  # ---- script mode: one check ------------------------------------------------------------------
  cmake_minimum_required(VERSION 3.25)
  foreach(var SOURCE FLAGS_FILE)
    if(NOT DEFINED ${var})
      message(FATAL_ERROR "BijouCompileFail: -D${var}=... is required")
    endif()
  endforeach()
  if(NOT DEFINED MAX_ERRORS)
    set(MAX_ERRORS 3)
  endif()
  include("${FLAGS_FILE}")

  set(args ${BIJOU_CF_FLAGS} -fsyntax-only)
  foreach(dir IN LISTS BIJOU_CF_INCLUDES)
    # Implicit directories (/usr/include) must not be passed again: -I/usr/include breaks the
    # #include_next chain of the C++ standard library headers.
    if(NOT dir STREQUAL "" AND NOT dir IN_LIST BIJOU_CF_IMPLICIT_INCLUDES)
      list(APPEND args "-I${dir}")
    endif()
  endforeach()
  foreach(def IN LISTS BIJOU_CF_DEFINITIONS)
    if(NOT def STREQUAL "")
      list(APPEND args "-D${def}")
    endif()
  endforeach()
  list(APPEND args ${BIJOU_CF_OPTIONS} "${SOURCE}")
  list(FILTER args EXCLUDE REGEX "^$")

  set(ENV{LC_ALL} C)  # untranslated diagnostics ("error:")
  execute_process(COMMAND "${BIJOU_CF_COMPILER}" ${args}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  list(JOIN args " " shown_args)
  set(command_line "${BIJOU_CF_COMPILER} ${shown_args}")

  if(SOURCE MATCHES "_ok\\.cpp$")
    if(NOT rc EQUAL 0)
      message(NOTICE "${command_line}\n--- compiler output ---\n${out}")
      message(FATAL_ERROR "${SOURCE} should compile but does not (compiler output above)")
    endif()
    message(STATUS "compiles, as it should: ${SOURCE}")
    return()
  endif()

  if(NOT SOURCE MATCHES "_ko\\.cpp$")
    message(FATAL_ERROR "BijouCompileFail: ${SOURCE} is neither a *_ok.cpp nor a *_ko.cpp file")
  endif()
  if(rc EQUAL 0)
    message(FATAL_ERROR "${SOURCE} should fail to compile but compiles.\n${command_line}")
  endif()

  file(STRINGS "${SOURCE}" expect_lines REGEX "^[ \t]*//[ \t]*expect:[ \t]*")
  if(NOT expect_lines)
    message(FATAL_ERROR "${SOURCE} has no `// expect: <regex>` line")
  endif()
  set(failures "")
  foreach(line IN LISTS expect_lines)
    string(REGEX REPLACE "^[ \t]*//[ \t]*expect:[ \t]*" "" regex "${line}")
    string(STRIP "${regex}" regex)
    if(NOT out MATCHES "${regex}")
      string(APPEND failures "  expected output matching: ${regex}\n")
    endif()
  endforeach()

  string(REPLACE ";" "\\;" escaped "${out}")
  string(REPLACE "\n" ";" out_lines "${escaped}")
  set(error_lines "")
  foreach(l IN LISTS out_lines)
    if(l MATCHES "error:")
      string(APPEND error_lines "${l}\n")
    endif()
  endforeach()
  string(REGEX MATCHALL "\n" newlines "${error_lines}")
  list(LENGTH newlines n_errors)
  if(n_errors GREATER MAX_ERRORS)
    string(APPEND failures "  ${n_errors} lines contain \"error:\" (at most ${MAX_ERRORS} allowed):\n${error_lines}")
  endif()

  if(failures)
    # NOTICE prints verbatim; FATAL_ERROR would re-wrap the compiler's lines.
    message(NOTICE "${command_line}\n--- compiler output ---\n${out}--- end of compiler output ---\n"
                   "${SOURCE} fails to compile, but not as expected:\n${failures}")
    message(FATAL_ERROR "${SOURCE}: unexpected diagnostic (details above)")
  endif()
  message(STATUS "fails as expected (${n_errors} error lines): ${SOURCE}\n${error_lines}")
  return()
endif()

# ---- module mode: register the tests -------------------------------------------------------------
function(bijou_add_compile_fail_tests)
  cmake_parse_arguments(PARSE_ARGV 0 ARG "" "DIRECTORY;TARGET;MAX_ERRORS" "")
  if(NOT ARG_DIRECTORY OR NOT ARG_TARGET)
    message(FATAL_ERROR "bijou_add_compile_fail_tests: DIRECTORY and TARGET are required")
  endif()
  if(NOT DEFINED ARG_MAX_ERRORS)
    set(ARG_MAX_ERRORS 3)
  endif()
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "^(GNU|Clang|AppleClang)$")
    message(STATUS "bijou: compile-fail tests need GCC or Clang (have ${CMAKE_CXX_COMPILER_ID}); skipped")
    return()
  endif()

  set(target ${ARG_TARGET})
  get_target_property(aliased ${target} ALIASED_TARGET)
  if(aliased)
    set(target ${aliased})
  endif()

  # The flags, read from the target when the build system is generated (so they include what its
  # dependencies' imported targets bring: Eigen's and xtensor's directories, -fopenmp).
  separate_arguments(cxx_flags UNIX_COMMAND "${CMAKE_CXX_FLAGS}")
  # One file per enabled language (the options hold $<COMPILE_LANGUAGE:CXX> conditions, e.g. OpenMP's,
  # which evaluate differently for CUDA when the CUDA backend is built); the tests read the C++ one.
  set(flags_file "${CMAKE_CURRENT_BINARY_DIR}/compile_fail_flags-$<CONFIG>-CXX.cmake")
  file(GENERATE OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/compile_fail_flags-$<CONFIG>-$<COMPILE_LANGUAGE>.cmake" CONTENT
"# Generated by bijou_add_compile_fail_tests() for target ${target}.
set(BIJOU_CF_COMPILER [==[${CMAKE_CXX_COMPILER}]==])
set(BIJOU_CF_FLAGS [==[${cxx_flags};${CMAKE_CXX20_STANDARD_COMPILE_OPTION}]==])
set(BIJOU_CF_INCLUDES [==[$<TARGET_PROPERTY:${target},INTERFACE_INCLUDE_DIRECTORIES>]==])
set(BIJOU_CF_DEFINITIONS [==[$<TARGET_PROPERTY:${target},INTERFACE_COMPILE_DEFINITIONS>]==])
set(BIJOU_CF_OPTIONS [==[$<TARGET_PROPERTY:${target},INTERFACE_COMPILE_OPTIONS>]==])
set(BIJOU_CF_IMPLICIT_INCLUDES [==[${CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES}]==])
")

  file(GLOB sources CONFIGURE_DEPENDS "${ARG_DIRECTORY}/*_ok.cpp" "${ARG_DIRECTORY}/*_ko.cpp")
  foreach(src IN LISTS sources)
    get_filename_component(name "${src}" NAME_WE)
    if(name MATCHES "^(.*)_ko$")
      set(partner "${ARG_DIRECTORY}/${CMAKE_MATCH_1}_ok.cpp")
      if(NOT EXISTS "${partner}")
        message(FATAL_ERROR "bijou: ${src} has no ${partner} partner")
      endif()
    endif()
    add_test(NAME compile_fail.${name}
             COMMAND "${CMAKE_COMMAND}" "-DSOURCE=${src}" "-DFLAGS_FILE=${flags_file}"
                     "-DMAX_ERRORS=${ARG_MAX_ERRORS}" -P "${CMAKE_CURRENT_FUNCTION_LIST_FILE}")
    set_tests_properties(compile_fail.${name} PROPERTIES LABELS compile_fail)
  endforeach()
endfunction()
