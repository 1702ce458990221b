# Warnings for bijou's own targets (tests, examples, benchmarks): -Wall -Wextra, errors in CI via
# BIJOU_WERROR. Third-party headers are included as system headers by their imported targets. CUDA
# sources pass -Wall -Wextra to the host compiler and, with BIJOU_WERROR, turn nvcc's own warnings
# into errors too.
option(BIJOU_WERROR "Treat warnings as errors in bijou's own targets" OFF)
function(bijou_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic>
                                            $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
  if(BIJOU_WERROR)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>
                                              $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Werror>)
  endif()
endfunction()
