# conditional_moons: a conditional RealNVP p(x | θ) on rotated two moons (included by
# examples/CMakeLists.txt). Built like two_moons; its smoke test (with tests) trains a tiny model for
# a few steps and checks the exit code, the pictures and the JSON line (smoke_check.cmake).
add_executable(conditional_moons conditional_moons/conditional_moons.cpp)
target_link_libraries(conditional_moons PRIVATE bijou::bijou CLI11::CLI11 PNG::PNG)
target_include_directories(conditional_moons PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
bijou_example_native(conditional_moons)
bijou_warnings(conditional_moons)

if(BIJOU_BUILD_TESTS)
  set(_cm_dir ${CMAKE_CURRENT_BINARY_DIR}/conditional_moons_smoke)
  file(MAKE_DIRECTORY ${_cm_dir})
  add_test(NAME examples.conditional_moons.smoke
           COMMAND ${CMAKE_COMMAND} "-DEXE=$<TARGET_FILE:conditional_moons>"
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/conditional_moons/smoke_check.cmake
           WORKING_DIRECTORY ${_cm_dir})
  set_tests_properties(examples.conditional_moons.smoke PROPERTIES TIMEOUT 60 LABELS "example")
endif()
