# Warnings for bijou's own targets (tests, examples, benchmarks): -Wall -Wextra, errors in CI via
# BIJOU_WERROR. Third-party headers are included as system headers by their imported targets.
option(BIJOU_WERROR "Treat warnings as errors in bijou's own targets" OFF)
function(bijou_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(BIJOU_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
